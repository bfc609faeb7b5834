'use strict'
// fileStore: state that survives a restart and is shared by the processes of one host.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { startInstance } = require('./helpers/fleet.js')
const { uniq, sleep, recordingLogger } = require('./helpers.js')
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

test('saves are atomic and last-writer-wins under a lock: four processes saving at once lose no update', async () => {
  const dir = tmpDir()
  const name = uniq('file-race')
  // Each process saves 50 snapshots; stateChangedAt values interleave across processes.
  const script = `
    const { fileStore } = require(${JSON.stringify(path.join(__dirname, '..'))})
    const store = fileStore({ dir: process.argv[1] })
    const k = Number(process.argv[2])
    ;(async () => {
      for (let i = 0; i < 50; i++) {
        await store.save(process.argv[3], { name: process.argv[3], state: i % 2 ? 'OPEN' : 'CLOSED', forced: false, nextAttemptAt: null, stateChangedAt: 1e12 + i * 4 + k, savedAt: Date.now() })
      }
    })().catch((e) => { console.error(e); process.exit(1) })`
  const codes = await Promise.all([0, 1, 2, 3].map((k) => new Promise((resolve) => {
    const c = spawn(process.execPath, ['-e', script, dir, String(k), name], { stdio: 'inherit' })
    c.on('exit', resolve)
  })).map((p, k) => p.then((code) => [k, code])))
  assert.deepEqual(codes.map(([, c]) => c), [0, 0, 0, 0])
  const saved = fileStore({ dir }).loadSync(name)
  assert.equal(saved.stateChangedAt, 1e12 + 49 * 4 + 3, 'the newest snapshot won')
  const leftovers = fs.readdirSync(dir).filter((f) => f.endsWith('.tmp') || f.endsWith('.lock'))
  assert.deepEqual(leftovers, [], 'no temporary or lock file left behind')
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
