'use strict'
// The fleet under faults, on a real store of each kind (Redis, DynamoDB on moto_server, files):
// 5 processes × 2 worker threads share one circuit; one process's wall clock runs a day ahead
// (libfaketime); the store is paused (SIGSTOP) for 5 s, then killed and started again (empty);
// a worker is terminated while it holds the fleet's probe. A control process on a store that
// differs only in database, table or directory runs beside them. What must hold:
// - a trip anywhere reaches every instance within syncIntervalMs + 1 s (+ margin) of the store
//   being reachable;
// - never more than halfOpenMaxRequests (1) probes fleet-wide while the store answers;
// - no call waits on the store longer than loadTimeoutMs (+ margin), paused store included;
// - the fleet closes again after recovery (the dead worker's permit expires);
// - the control process never sees any of it.
// Each run prints its figures (RELIABILITY.md records them).
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { fork } = require('node:child_process')
const { requireTool } = require('./helpers/tools.js')
const { startRedis, requireRedis } = require('./helpers/redis.js')
const { startDynamo } = require('./helpers/dynamodb.js')
const { uniq, sleep } = require('./helpers.js')

const FIXTURE = path.join(__dirname, 'fixtures', 'chaos-node.js')
const FAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1'
const SYNC = 500
const LOAD = 300
const RESET = 2000
const CALL_TIMEOUT = 1500 // also the probe permit's TTL: max(timeout, halfOpenTimeout)
const MARGIN = 700 // a loaded 2-core machine: scheduling, IPC and worker hops
const PROCS = 5
const THREADS = 2

/** One process of the fleet; `ask(worker, message)` answers through its main thread. */
function startProcess(cfg, env = {}) {
  const child = fork(FIXTURE, [JSON.stringify(cfg)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, ...env } })
  const waiting = new Map()
  let next = 0
  child.on('message', (m) => {
    const w = m && waiting.get(m.id)
    if (w) {
      waiting.delete(m.id)
      w(m)
    }
  })
  const exit = new Promise((resolve) => child.on('exit', resolve))
  const ready = new Promise((resolve, reject) => {
    child.once('message', (m) => (m && m.ready ? resolve() : reject(new Error('unexpected first message'))))
    child.once('exit', (code) => reject(new Error(`exited with ${code} before it was ready`)))
  })
  const p = {
    ask: (worker, m) => new Promise((resolve) => {
      const id = ++next
      waiting.set(id, resolve)
      child.send({ ...m, worker, id })
    }),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exit
    },
  }
  return ready.then(() => p)
}

/** The store servers of each kind: the fleet's store and the control's, pause/kill/restart. */
async function storeOf(kind) {
  if (kind === 'redis') {
    const redis = await startRedis()
    return {
      fleet: { kind: 'redis', options: { url: `${redis.url}/0` } },
      control: { kind: 'redis', options: { url: `${redis.url}/1` } },
      pause: () => process.kill(redis.pid, 'SIGSTOP'),
      async killAndRestart() {
        const pid = redis.pid
        process.kill(pid, 'SIGCONT')
        process.kill(pid, 'SIGKILL')
        while ((() => { try { process.kill(pid, 0); return true } catch { return false } })()) await sleep(20)
        await sleep(50)
        await redis.start()
      },
      stop: () => redis.stop(),
    }
  }
  if (kind === 'dynamodb') {
    const moto = await startDynamo(['chaos', 'chaos-other'])
    return {
      fleet: { kind: 'dynamodb', options: { endpoint: moto.endpoint, tableName: 'chaos' } },
      control: { kind: 'dynamodb', options: { endpoint: moto.endpoint, tableName: 'chaos-other' } },
      pause: () => moto.pause(),
      async killAndRestart() {
        await moto.kill()
        await moto.start()
      },
      stop: () => moto.kill(),
    }
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bw-chaos-'))
  return {
    fleet: { kind: 'file', options: { dir: path.join(dir, 'fleet') } },
    control: { kind: 'file', options: { dir: path.join(dir, 'control') } },
    pause: null, // a local directory has no server to pause or kill
    stop: () => fs.rmSync(dir, { recursive: true, force: true }),
  }
}

for (const kind of ['redis', 'dynamodb', 'file']) {
  test(`fleet chaos on ${kind}: 5 processes × 2 threads, a clock a day ahead, the store paused and restarted, a probe holder terminated`, { timeout: 120_000 }, async (t) => {
    if (kind === 'redis' && !requireRedis(t)) return
    if (kind === 'dynamodb' && !requireTool(t, 'moto_server')) return
    const skew = fs.existsSync(FAKETIME) ? { LD_PRELOAD: FAKETIME, FAKETIME: '+1d', DONT_FAKE_MONOTONIC: '1' } : {}
    const store = await storeOf(kind)
    const name = uniq(`chaos-${kind}`)
    const cfg = (s) => ({
      threads: THREADS,
      store: { ...s, options: { ...s.options, syncIntervalMs: SYNC, loadTimeoutMs: LOAD } },
      breaker: { name, consecutiveFailures: 4, minimumRequests: 1000, resetTimeout: RESET, timeout: CALL_TIMEOUT, halfOpenMaxRequests: 1 },
    })
    const procs = []
    t.after(async () => {
      await Promise.all(procs.map((p) => p.stop()))
      await store.stop()
    })
    for (let i = 0; i < PROCS; i++) procs.push(await startProcess(cfg(store.fleet), i === PROCS - 1 ? skew : {}))
    const control = await startProcess({ ...cfg(store.control), threads: 1 })
    procs.push(control)
    const fleet = procs.slice(0, PROCS)
    const all = fleet.flatMap((p) => Array.from({ length: THREADS }, (_, w) => ({ p, w })))
    const figures = { kind }
    const waits = []
    const run = async (x, m = {}) => {
      const r = await x.p.ask(x.w, { cmd: 'run', ...m })
      if (typeof r.waitedMs === 'number') waits.push(r.waitedMs)
      return r
    }
    const states = () => Promise.all(all.filter((x) => !x.gone).map((x) => x.p.ask(x.w, { cmd: 'state' })))
    /** ms until every live worker reports `state` (polled), failing after `limit`. */
    const reachAll = async (state, from, limit, what) => {
      for (;;) {
        const s = await states()
        if (s.every((x) => x.state === state)) return Date.now() - from
        if (Date.now() - from > limit) assert.fail(`${what}: not every instance ${state} within ${limit} ms: ${s.map((x) => x.state).join(' ')} ${JSON.stringify(s.map((x) => x.transitions.slice(-2)))}`)
        await sleep(25)
      }
    }
    const trip = async (x) => {
      for (let i = 0; i < 4; i++) await run(x, { outcome: 'fail' })
      assert.equal((await x.p.ask(x.w, { cmd: 'state' })).state, 'OPEN')
    }
    const controlRuns = async () => {
      const r = await control.ask(0, { cmd: 'run' })
      assert.equal(r.ran, true, 'the control instance runs its calls')
      assert.equal((await control.ask(0, { cmd: 'state' })).state, 'CLOSED')
    }
    /**
     * Traffic goes on (one call every 100 ms, round robin) until every live worker is CLOSED:
     * the fleet recovers by itself. Fails after RESET + CALL_TIMEOUT + 3 s.
     */
    const recover = async (from, what) => {
      const live = () => all.filter((x) => !x.gone)
      for (let i = 0; ; i++) {
        if ((await states()).every((x) => x.state === 'CLOSED')) return
        if (Date.now() - from > RESET + CALL_TIMEOUT + 3000) assert.fail(`${what}: the fleet did not close: ${JSON.stringify((await states()).map((x) => x.transitions.slice(-2)))}`)
        const l = live()
        await run(l[i % l.length])
        await sleep(100)
      }
    }
    /** All workers call at once with a failing 600 ms probe: how many ran (probes). */
    const probeBurst = async () => {
      const rs = await Promise.all(all.filter((x) => !x.gone).map((x) => run(x, { outcome: 'fail', delayMs: 600 })))
      return rs.filter((r) => r.ran).length
    }

    // 1. Everyone CLOSED; a trip in one process reaches every worker of every process.
    for (const x of all) assert.equal((await run(x)).ran, true)
    let t0 = Date.now()
    await trip(all[0])
    figures.tripReachedAllMs = await reachAll('OPEN', t0, SYNC + 1000 + MARGIN, 'a trip')
    await controlRuns()

    // 2. Probes: after the open period every worker calls at once; at most one probe runs
    // fleet-wide (it fails, so the circuit re-opens and nothing else can run). Twice.
    figures.probesPerBurst = []
    for (let round = 0; round < 2; round++) {
      await sleep(RESET + 300)
      figures.probesPerBurst.push(await probeBurst())
      await sleep(SYNC)
    }
    for (const n of figures.probesPerBurst) assert.ok(n <= 1, `${n} probes ran at once fleet-wide (halfOpenMaxRequests 1)`)
    // ... then one succeeds, and the fleet closes.
    await sleep(RESET + 300)
    t0 = Date.now()
    await recover(t0, 'the close after a probe')
    figures.closeReachedAllMs = Date.now() - t0

    // 3. A worker terminated while it holds the fleet's probe: after the permit expires
    // (CALL_TIMEOUT), another instance probes and the fleet closes again.
    await trip(all[4])
    await reachAll('OPEN', Date.now(), SYNC + 1000 + MARGIN, 'the second trip')
    await sleep(RESET + 300)
    const holder = all.find((x) => x.p === fleet[3] && x.w === 0)
    let held = null
    for (let i = 0; i < 20; i++) {
      held = await run(holder, { hold: true, within: 500 })
      if (held.ran) break
      await sleep(200)
    }
    assert.equal(held.ran, true, 'the worker holds the probe')
    await holder.p.ask(0, { cmd: 'terminate' })
    holder.gone = true
    t0 = Date.now()
    const others = all.filter((x) => x.p !== fleet[3])
    for (let i = 0; ; i++) {
      const r = await run(others[i % others.length])
      if (r.ran && r.ok) break
      if (Date.now() - t0 > CALL_TIMEOUT + RESET + 5000) assert.fail('no instance could probe after the holder died')
      await sleep(100)
    }
    figures.probeAfterHolderDiedMs = Date.now() - t0
    figures.closedAfterHolderDiedMs = await reachAll('CLOSED', t0, CALL_TIMEOUT + RESET + 5000 + SYNC + MARGIN, 'the close after the holder died')
    await holder.p.ask(0, { cmd: 'restart' })
    holder.gone = false
    await controlRuns()

    if (store.pause !== null) {
      // 4. The store paused for 5 s: calls go on; no call waits longer than loadTimeoutMs — a
      // probe waiting for its permit, a new process's first call waiting for its initial load.
      const pauseFrom = waits.length
      store.pause()
      const pausedAt = Date.now()
      await trip(all[6]) // its save cannot go out
      const late = startProcess({ ...cfg(store.fleet), threads: 1 })
      const loop = async (x) => {
        while (Date.now() - pausedAt < 4800) {
          await run(x)
          await sleep(50)
        }
      }
      await Promise.all([...all.map(loop), late.then(async (p) => {
        procs.push(p)
        await run({ p, w: 0 })
      })])
      const during = waits.slice(pauseFrom)
      figures.callsWhilePaused = during.length
      figures.longestWaitWhilePausedMs = Math.round(Math.max(...during))
      assert.ok(figures.longestWaitWhilePausedMs <= LOAD + MARGIN, `a call waited ${figures.longestWaitWhilePausedMs} ms on a paused store (loadTimeoutMs ${LOAD})`)
      // 5. ... then killed and started again, empty. A trip made as soon as it answers reaches
      // every instance within syncIntervalMs + 1 s of that moment.
      await store.killAndRestart()
      const reachable = Date.now()
      await sleep(RESET + 300) // whatever each process decided alone has run its course
      await Promise.all(all.map((x) => run(x)))
      const tripAt = Date.now()
      await trip(all[1])
      figures.tripAfterRestartReachedAllMs = await reachAll('OPEN', tripAt, SYNC + 1000 + MARGIN, 'a trip after the restart')
      figures.storeReachableToTripMs = tripAt - reachable
      // 6. And the fleet closes again.
      await sleep(RESET + 300)
      t0 = Date.now()
      await recover(t0, 'the close after the restart')
      figures.closeAfterRestartReachedAllMs = Date.now() - t0
    }
    await controlRuns()
    figures.longestWaitMs = Math.round(Math.max(...waits))
    assert.ok(figures.longestWaitMs <= LOAD + MARGIN, `longest wait on the store ${figures.longestWaitMs} ms`)
    figures.calls = waits.length
    figures.runtimeNote = 'ms figures include IPC and worker hops'
    console.log(`# chaos figures ${JSON.stringify(figures)}`)
  })
}
