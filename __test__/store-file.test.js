'use strict'
// fileStore: state that survives a restart and is shared by the processes of one host.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { startInstance } = require('./helpers/fleet.js')
const { uniq, sleep, recordingLogger, runNode } = require('./helpers.js')
const { CircuitBreaker, fileStore } = require('..')

const dirs = []
function tmpDir() {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'bw-filestore-'))
  dirs.push(d)
  return d
}
test.after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true })
})

function cfg(dir, name, breaker = {}) {
  return {
    store: { kind: 'file', options: { dir, syncIntervalMs: 100 } },
    breaker: { name, failureThreshold: 0.5, minimumRequests: 2, resetTimeout: 60_000, timeout: 0, ...breaker },
  }
}

const failing = () => Promise.reject(new Error('down'))

test('the state survives a restart: a new process starts OPEN before its first call', async () => {
  const dir = tmpDir()
  const name = uniq('file-restart')
  const a = await startInstance(cfg(dir, name))
  await a.run({ outcome: 'fail' })
  await a.run({ outcome: 'fail' })
  assert.equal((await a.state()).state, 'OPEN')
  await sleep(100)
  await a.stop() // the process is gone; its decision is in the file
  const b = await startInstance(cfg(dir, name))
  try {
    const s = await b.state() // before any call: loaded synchronously at construction
    assert.equal(s.state, 'OPEN')
    assert.ok(s.stats.nextAttemptAt > Date.now() + 50_000, 'the saved nextAttemptAt, not a fresh one')
    const r = await b.run()
    assert.equal(r.ran, false)
    assert.equal(r.error, 'CircuitBreakerOpenError')
  } finally {
    await b.stop()
  }
})

test('processes on one host share state: a trip in one reaches the other within syncIntervalMs', async () => {
  const dir = tmpDir()
  const name = uniq('file-share')
  const [a, b] = await Promise.all([startInstance(cfg(dir, name)), startInstance(cfg(dir, name))])
  try {
    await a.run({ outcome: 'fail' })
    await a.run({ outcome: 'fail' })
    await sleep(250)
    const r = await b.run()
    assert.equal(r.ran, false)
    const s = await b.state()
    assert.equal(s.state, 'OPEN')
    assert.equal(s.transitions.at(-1).reason, 'store')
  } finally {
    await Promise.all([a.stop(), b.stop()])
  }
})

test('a corrupt or foreign file is logged and ignored, never a crash; the next decision replaces it', async () => {
  const dir = tmpDir()
  for (const [i, content] of ['{"not":', '{"format":"something-else"}', '\u0000\u0001binary', '{"format":"breakwater.snapshot.v1","snapshot":{"state":"MAYBE"}}'].entries()) {
    const name = uniq(`file-corrupt-${i}`)
    const store = fileStore({ dir, syncIntervalMs: 50 })
    fs.writeFileSync(path.join(dir, `${encodeURIComponent(name)}.json`), content)
    const log = recordingLogger()
    const b = new CircuitBreaker({ name, store, minimumRequests: 2, logger: log })
    assert.equal(b.state, 'CLOSED', 'started on local state')
    assert.equal(await b.execute(async () => 'v'), 'v', 'calls work')
    const st = b.getStats().store
    assert.equal(st.healthy, false)
    assert.match(st.lastError, /not a breakwater snapshot/)
    await sleep(150) // several syncs read the same bad file
    assert.equal(log.lines.filter((l) => /not a breakwater snapshot/.test(l.msg)).length, 1, 'reported once, not once per sync')
    await b.execute(failing).catch(() => {})
    await b.execute(failing).catch(() => {})
    assert.equal(b.state, 'OPEN')
    await sleep(100)
    const saved = JSON.parse(fs.readFileSync(path.join(dir, `${encodeURIComponent(name)}.json`), 'utf8'))
    assert.equal(saved.snapshot.state, 'OPEN', 'the bad file was replaced by a good one')
    assert.equal(b.getStats().store.healthy, true)
    b.dispose()
  }
})

test('saves are atomic and versioned under a lock: four processes saving at once lose no update', async () => {
  const dir = tmpDir()
  const name = uniq('file-race')
  // Each process saves 50 decisions, each based on the version it just read; a save refused
  // because another process saved first is read again and retried. Every save that succeeds
  // gets its own version: 200 saves, version 200.
  const script = `
    const { fileStore } = require(${JSON.stringify(path.join(__dirname, '..'))})
    const store = fileStore({ dir: process.argv[1] })
    const name = process.argv[3]
    ;(async () => {
      let refused = 0
      for (let i = 0; i < 50; i++) {
        for (;;) {
          const cur = await store.load(name)
          const at = Date.now()
          const r = await store.save(name, { name, state: i % 2 ? 'OPEN' : 'CLOSED', forced: false, nextAttemptAt: i % 2 ? at + 1000 : null, stateChangedAt: at, savedAt: at }, { expectedVersion: cur ? cur.version : 0 })
          if (r.saved) break
          refused++
        }
      }
      console.log(refused)
    })().catch((e) => { console.error(e); process.exit(1) })`
  const runs = await Promise.all([0, 1, 2, 3].map((k) => new Promise((resolve) => {
    const c = spawn(process.execPath, ['-e', script, dir, String(k), name], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    c.stdout.on('data', (d) => { out += d })
    c.on('exit', (code) => resolve({ code, refused: Number(out) }))
  })))
  assert.deepEqual(runs.map((r) => r.code), [0, 0, 0, 0])
  const saved = fileStore({ dir }).loadSync(name)
  assert.equal(saved.version, 200, `every save got its own version (${runs.map((r) => r.refused).join(', ')} refused as stale)`)
  // A save based on an old version is refused; an operator's (force) is not.
  const store = fileStore({ dir })
  assert.deepEqual(await store.save(name, { ...saved, state: 'CLOSED' }, { expectedVersion: 150 }), { saved: false, version: 200 })
  assert.deepEqual(await store.save(name, { ...saved, state: 'CLOSED' }, { expectedVersion: 150, force: true }), { saved: true, version: 201 })
  const leftovers = fs.readdirSync(dir).filter((f) => f.endsWith('.tmp') || f.endsWith('.lock'))
  assert.deepEqual(leftovers, [], 'no temporary or lock file left behind')
})

test('a FIFO, a device or a huge file at a circuit\'s path is refused without reading or blocking', { timeout: 30_000 }, async () => {
  // Issue 13, defect 3: a FIFO hung the constructor; a symlink to /dev/zero grew RSS to 4.4 GB.
  const dir = tmpDir()
  const { execFileSync } = require('node:child_process')
  const names = { fifo: uniq('file-fifo'), zero: uniq('file-zero'), huge: uniq('file-huge') }
  execFileSync('mkfifo', [path.join(dir, `${names.fifo}.json`)])
  fs.symlinkSync('/dev/zero', path.join(dir, `${names.zero}.json`))
  fs.writeFileSync(path.join(dir, `${names.huge}.json`), Buffer.alloc(50e6, 0x20))
  // In a child: if it blocks on the FIFO, the parent sees a timeout instead of a hang.
  const script = `
    const { CircuitBreaker, fileStore } = require(${JSON.stringify(path.join(__dirname, '..'))})
    const store = fileStore({ dir: process.argv[1], syncIntervalMs: 50 })
    const rss0 = process.memoryUsage().rss
    const out = {}
    ;(async () => {
      for (const name of process.argv.slice(2)) {
        const b = new CircuitBreaker({ name, store, logger: null })
        out[name] = { value: await b.execute(async () => 'ran'), store: b.getStats().store }
      }
      await new Promise((r) => setTimeout(r, 300)) // a few syncs read the same paths again
      out.rssGrowth = process.memoryUsage().rss - rss0
      console.log(JSON.stringify(out))
      process.exit(0)
    })()`
  const r = await runNode(['-e', script, dir, names.fifo, names.zero, names.huge], { limitMs: 10_000 })
  assert.equal(r.signal, null, `the process was killed after 10 s (it blocked): ${r.err}`)
  assert.equal(r.code, 0, r.err)
  const out = JSON.parse(r.out)
  for (const [kind, name] of Object.entries(names)) {
    assert.equal(out[name].value, 'ran', kind)
    assert.equal(out[name].store.healthy, false, kind)
    assert.match(out[name].store.lastError, kind === 'huge' ? /more than 65536/ : /not a regular file/, kind)
  }
  assert.ok(out.rssGrowth < 50e6, `rss grew by ${(out.rssGrowth / 1e6).toFixed(0)} MB`)
})

test('every valid name is saved and restored: long ASCII, CJK, emoji, a lone surrogate', async () => {
  // Issue 13, defect 4: from 219 ASCII, 25 CJK or 19 emoji characters the file name passed 255
  // bytes, and a lone surrogate threw "URI malformed": the state was silently never saved.
  const dir = tmpDir()
  const names = ['a'.repeat(256), '断'.repeat(256), '🌊'.repeat(128), `x\uD800y`, `${uniq('plain')}`, '../../etc/passwd', '.']
  for (const name of names) {
    const store = fileStore({ dir })
    const b = new CircuitBreaker({ name, store, logger: null })
    b.open()
    await sleep(20)
    for (let i = 0; i < 50 && !(b.getStats().store.lastSyncAt); i++) await sleep(10)
    assert.equal(b.getStats().store.healthy, true, `${name.slice(0, 10)}: ${b.getStats().store.lastError}`)
    b.dispose()
    const again = fileStore({ dir }).loadSync(name)
    assert.equal(again && again.state, 'OPEN', `${JSON.stringify(name.slice(0, 12))} (${name.length} chars) was saved`)
    assert.equal(again.name, name)
  }
  for (const f of fs.readdirSync(dir)) assert.ok(Buffer.byteLength(f) <= 255, f)
  assert.ok(fs.readdirSync(dir).length >= names.length, 'every file is inside dir')
})

test('probe permits through the file: at most max holders, none while the saved state is OPEN and not due', async () => {
  const dir = tmpDir()
  const name = uniq('file-probe')
  const stores = Array.from({ length: 6 }, () => fileStore({ dir }))
  const got = await Promise.all(stores.map((s) => s.tryAcquireProbe(name, { ttlMs: 5_000, max: 2 })))
  assert.equal(got.filter(Boolean).length, 2)
  const holder = stores[got.indexOf(true)]
  await holder.releaseProbe(name)
  assert.equal(await stores[got.indexOf(false)].tryAcquireProbe(name, { ttlMs: 5_000, max: 2 }), true, 'a released permit can be taken')
  await stores[0].save(name, { name, state: 'OPEN', forced: false, nextAttemptAt: Date.now() + 60_000, stateChangedAt: Date.now(), savedAt: Date.now() })
  const other = uniq('file-probe-expiry')
  assert.equal(await stores[1].tryAcquireProbe(name, { ttlMs: 5_000, max: 10 }), false, 'OPEN and not due: no probe anywhere')
  assert.equal(await stores[1].tryAcquireProbe(other, { ttlMs: 100, max: 1 }), true)
  assert.equal(await stores[2].tryAcquireProbe(other, { ttlMs: 100, max: 1 }), false)
  await sleep(150)
  assert.equal(await stores[2].tryAcquireProbe(other, { ttlMs: 100, max: 1 }), true, 'a permit expires after ttlMs (its holder may have crashed)')
})

test('fileStore options are checked, naming the option', () => {
  assert.throws(() => fileStore(), (e) => e instanceof TypeError && /fileStore/.test(e.message))
  assert.throws(() => fileStore({}), (e) => e instanceof TypeError && /dir/.test(e.message))
  assert.throws(() => fileStore({ dir: tmpDir(), syncIntervalMs: 1 }), (e) => e instanceof RangeError && /syncIntervalMs/.test(e.message))
  assert.throws(() => fileStore({ dir: tmpDir(), loadTimeoutMs: 'soon' }), (e) => e instanceof TypeError && /loadTimeoutMs/.test(e.message))
})
