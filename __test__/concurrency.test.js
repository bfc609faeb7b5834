'use strict'
// Concurrency: a burst of calls into HALF_OPEN runs exactly halfOpenMaxRequests probes;
// hung probes and halfOpenTimeout; no lost counts across worker_threads and across many
// instances of one name; a trip in one thread is seen everywhere before any action runs.
//
// Rerun: CI=1 node --test --test-concurrency=1 __test__/concurrency.test.js
const { test } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { Worker } = require('node:worker_threads')
const { CircuitBreaker, CircuitBreakerOpenError, getAllCircuitBreakerStats } = require('..')
const { uniq, sleep, deferred, failN, okN, waitFor } = require('./helpers.js')

const ROOT = path.join(__dirname, '..')
const BURST = 2_000

/** Records how each promise settled, without awaiting any of them. */
function track(promises) {
  const out = promises.map(() => ({ settled: false, ok: undefined, value: undefined, error: undefined }))
  promises.forEach((p, i) => {
    p.then(
      (v) => Object.assign(out[i], { settled: true, ok: true, value: v }),
      (e) => Object.assign(out[i], { settled: true, ok: false, error: e }),
    )
  })
  return out
}

const tick = () => new Promise((r) => setImmediate(r))

/** Fires BURST calls in one synchronous loop; each action that runs returns a pending deferred. */
function burst(b) {
  const runs = []
  const promises = []
  for (let i = 0; i < BURST; i++) {
    promises.push(
      b.execute(() => {
        const d = deferred()
        runs.push({ i, d })
        return d.promise
      }),
    )
  }
  return { runs, promises, results: track(promises) }
}

function assertRejectedOpen(results, runs, name) {
  const ranIdx = new Set(runs.map((r) => r.i))
  for (let i = 0; i < results.length; i++) {
    if (ranIdx.has(i)) {
      assert.equal(results[i].settled, false, `probe ${i} settled before its action did`)
      continue
    }
    const r = results[i]
    assert.equal(r.settled, true, `call ${i} was neither run nor rejected`)
    assert.equal(r.ok, false, `call ${i} resolved without running`)
    assert.ok(r.error instanceof CircuitBreakerOpenError, `call ${i}: ${r.error}`)
    assert.equal(r.error.circuit, name)
    assert.equal(r.error.state, 'HALF_OPEN')
    assert.equal(r.error.retryAfterMs, 0)
  }
}

// ---- (a) a burst into HALF_OPEN ---------------------------------------------------------

for (const [maxProbes, successThreshold] of [[1, 1], [3, 3], [3, 2]]) {
  test(`(a) ${BURST} concurrent calls into HALF_OPEN run exactly ${maxProbes} probe(s); they close it (successThreshold ${successThreshold})`, async () => {
    const name = uniq('conc-burst')
    const b = new CircuitBreaker({
      name, logger: null, timeout: 0, consecutiveFailures: 1, resetTimeout: 40,
      halfOpenMaxRequests: maxProbes, successThreshold,
    })
    const transitions = []
    b.on('stateChange', (e) => transitions.push(`${e.from}>${e.to}`))
    await failN(b, 1)
    assert.equal(b.state, 'OPEN')
    await sleep(70)

    const { runs, results } = burst(b)
    assert.equal(runs.length, maxProbes, `actions run: ${runs.length}`)
    await tick()
    assertRejectedOpen(results, runs, name)
    assert.equal(b.state, 'HALF_OPEN')
    let s = b.getStats()
    assert.equal(s.rejectionCount, BURST - maxProbes)

    // A second wave while every slot is still held: nothing more runs.
    const wave2 = burst(b)
    assert.equal(wave2.runs.length, 0)
    await tick()
    assert.ok(wave2.results.every((r) => r.settled && r.error instanceof CircuitBreakerOpenError))

    // The probes succeed, one after another.
    for (let k = 0; k < runs.length; k++) {
      runs[k].d.resolve(`probe-${k}`)
      await tick()
      assert.equal(results[runs[k].i].value, `probe-${k}`)
      const expected = k + 1 >= successThreshold ? 'CLOSED' : 'HALF_OPEN'
      assert.equal(b.state, expected, `after ${k + 1} probe success(es)`)
    }
    assert.equal(b.state, 'CLOSED')
    s = b.getStats()
    assert.equal(s.successCount, maxProbes)
    assert.equal(s.failureCount, 1)
    assert.equal(s.rejectionCount, 2 * BURST - maxProbes)
    assert.equal(s.totalRequests, 1 + 2 * BURST)
    assert.deepEqual(transitions, ['CLOSED>OPEN', 'OPEN>HALF_OPEN', 'HALF_OPEN>CLOSED'])
    // closed means closed: a burst now runs everything
    let ran = 0
    await Promise.all(Array.from({ length: BURST }, () => b.execute(() => { ran++ })))
    assert.equal(ran, BURST)
  })
}

test('(a) a burst that arrives exactly as resetTimeout expires (OPEN -> HALF_OPEN taken by the burst itself) runs 2 probes of 2', async () => {
  // No state read in between: the first call of the burst makes the lazy transition.
  const name = uniq('conc-burst-lazy')
  const b = new CircuitBreaker({ name, logger: null, timeout: 0, consecutiveFailures: 1, resetTimeout: 30, halfOpenMaxRequests: 2 })
  await failN(b, 1)
  const end = Date.now() + 45
  while (Date.now() < end) await tick() // no b.state read
  const { runs, results } = burst(b)
  assert.equal(runs.length, 2)
  await tick()
  assertRejectedOpen(results, runs, name)
  for (const r of runs) r.d.resolve('ok')
  await tick()
  assert.equal(b.state, 'CLOSED')
})

// ---- (b) hung probes and halfOpenTimeout --------------------------------------------------

for (const maxProbes of [1, 3]) {
  test(`(b) ${maxProbes} probe(s) hanging past halfOpenTimeout re-open the circuit; their late results decide nothing`, async () => {
    const name = uniq('conc-hung')
    const b = new CircuitBreaker({
      name, logger: null, timeout: 0, consecutiveFailures: 1, resetTimeout: 10_000,
      halfOpenMaxRequests: maxProbes, halfOpenTimeout: 60,
    })
    const reasons = []
    b.on('stateChange', (e) => reasons.push(`${e.from}>${e.to}:${e.reason}`))
    b.open(20) // opens like a trip: HALF_OPEN after 20 ms, then resetTimeout (10 s) on re-open
    await sleep(40)
    const { runs, results } = burst(b)
    assert.equal(runs.length, maxProbes)
    await tick()
    assertRejectedOpen(results, runs, name)

    await sleep(100) // past halfOpenTimeout, probes still pending
    assert.equal(b.state, 'OPEN')
    assert.match(reasons.at(-1), /^HALF_OPEN>OPEN:halfOpenTimeout$/)
    const before = b.getStats()
    assert.ok(before.nextAttemptAt > Date.now() + 5_000, 're-opened for resetTimeout')

    // Late successes: must not close it.
    for (const r of runs) r.d.resolve('late')
    await tick()
    for (const r of runs) assert.equal(results[r.i].value, 'late', 'the late result still resolves its own call')
    assert.equal(b.state, 'OPEN')
    const after = b.getStats()
    assert.equal(after.state, 'OPEN')
    assert.equal(after.nextAttemptAt, before.nextAttemptAt, 'late probes do not move nextAttemptAt')
    let ran = false
    await assert.rejects(b.execute(() => { ran = true }), (e) => e instanceof CircuitBreakerOpenError && e.state === 'OPEN')
    assert.equal(ran, false)
    assert.equal(reasons.filter((r) => r.startsWith('HALF_OPEN>CLOSED')).length, 0, reasons.join(' '))
  })
}

test('(b) late probe failures from an old half-open period neither re-open a circuit that closed since nor count toward consecutiveFailures', async () => {
  const name = uniq('conc-stale')
  const b = new CircuitBreaker({
    name, logger: null, timeout: 0, consecutiveFailures: 1, resetTimeout: 10_000,
    halfOpenMaxRequests: 3, halfOpenTimeout: 50,
  })
  b.open(10)
  await sleep(25)
  const gen1 = burst(b)
  assert.equal(gen1.runs.length, 3)
  await sleep(80)
  assert.equal(b.state, 'OPEN', 'halfOpenTimeout re-opened it')
  // a second half-open period whose probe succeeds
  b.halfOpen()
  const fresh = deferred()
  const p = b.execute(() => fresh.promise)
  fresh.resolve('fresh')
  assert.equal(await p, 'fresh')
  assert.equal(b.state, 'CLOSED')
  // now the old probes fail
  for (const r of gen1.runs) r.d.reject(new Error('late failure'))
  await tick()
  for (const r of gen1.runs) assert.match(String(gen1.results[r.i].error), /late failure/)
  assert.equal(b.state, 'CLOSED', 'a stale probe failure tripped a closed circuit (consecutiveFailures 1)')
  const s = b.getStats()
  assert.equal(s.consecutiveFailures, 0)
  assert.equal(s.failureCount, 3, 'stale failures still count in the lifetime counters')
})

// ---- (c) 4 worker_threads x 25,000 mixed calls on one circuit -----------------------------

const COUNT_WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const { CircuitBreaker } = require(${JSON.stringify(ROOT)})
;(async () => {
  const { options, count, seed, gate } = workerData
  const b = new CircuitBreaker(options)
  // start together: every worker attached before any call
  const g = new Int32Array(gate)
  Atomics.add(g, 0, 1)
  Atomics.notify(g, 0)
  while (Atomics.load(g, 0) < workerData.workers) Atomics.wait(g, 0, Atomics.load(g, 0), 50)
  let s = seed >>> 0
  const rnd = () => { s = (s + 0x6d2b79f5) | 0; let t = Math.imul(s ^ (s >>> 15), 1 | s); t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t; return ((t ^ (t >>> 14)) >>> 0) / 4294967296 }
  let ok = 0, fail = 0, other = 0
  const batch = []
  for (let i = 0; i < count; i++) {
    const r = rnd()
    let p
    if (r < 0.35) p = b.execute(() => i)                                  // sync value
    else if (r < 0.6) p = b.execute(() => Promise.resolve(i))              // async success
    else if (r < 0.8) p = b.execute(() => Promise.reject(new Error('x'))) // async failure
    else if (r < 0.9) p = b.execute(() => { throw new Error('sync') })     // sync throw
    else p = b.execute(() => new Promise((res) => setImmediate(res, i)))   // a later success
    batch.push(p.then(() => { ok++ }, (e) => { if (e && e.name === 'CircuitBreakerOpenError') other++; else fail++ }))
    if (batch.length === 500) await Promise.all(batch.splice(0))
  }
  await Promise.all(batch)
  parentPort.postMessage({ ok, fail, other })
})().catch((e) => parentPort.postMessage({ error: String(e && e.stack) }))
`

function runEval(code, workerData, onMessage) {
  return new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true, workerData })
    let last
    w.on('message', (m) => {
      if (onMessage && onMessage(m, w)) return
      last = m
    })
    w.once('error', reject)
    w.once('exit', (code) => {
      if (last && last.error) reject(new Error(last.error))
      else if (code !== 0) reject(new Error(`worker exited with ${code}`))
      else resolve(last)
    })
  })
}

test('(c) 4 worker_threads x 25,000 mixed calls on one circuit lose no counts', async () => {
  const options = { name: uniq('conc-workers'), logger: null, timeout: 0, failureThreshold: 1, minimumRequests: 1e9 }
  const main = new CircuitBreaker(options)
  const gate = new SharedArrayBuffer(4)
  const rs = await Promise.all([1, 2, 3, 4].map((k) => runEval(COUNT_WORKER, { options, count: 25_000, seed: 0xc0ffee * k, gate, workers: 4 })))
  let ok = 0
  let fail = 0
  for (const r of rs) {
    assert.equal(r.other, 0, 'no call was rejected')
    assert.equal(r.ok + r.fail, 25_000)
    ok += r.ok
    fail += r.fail
  }
  const s = main.getStats()
  assert.equal(s.state, 'CLOSED')
  assert.equal(s.successCount + s.failureCount, 100_000)
  assert.equal(s.successCount, ok)
  assert.equal(s.failureCount, fail)
  assert.equal(s.rejectionCount, 0)
  assert.equal(s.totalRequests, 100_000)
  assert.equal(s.window.calls, 100_000)
  assert.equal(s.window.successes, ok)
  assert.equal(s.window.failures, fail)
  const all = getAllCircuitBreakerStats()[options.name]
  assert.equal(all.successCount, ok)
  assert.equal(all.failureCount, fail)
})

test('(c) the same with a count window and a timeout (timed path), main thread calling too', async () => {
  const options = { name: uniq('conc-workers-timed'), logger: null, timeout: 5_000, failureThreshold: 1, minimumRequests: 1e9, window: { type: 'count', size: 1000 } }
  const main = new CircuitBreaker(options)
  const gate = new SharedArrayBuffer(4)
  const workers = Promise.all([1, 2, 3].map((k) => runEval(COUNT_WORKER, { options, count: 20_000, seed: 77 * k, gate, workers: 3 })))
  let mainOk = 0
  let mainFail = 0
  for (let i = 0; i < 10_000; i++) {
    await main.execute(() => (i % 3 === 0 ? Promise.reject(new Error('m')) : i)).then(() => mainOk++, () => mainFail++)
  }
  const rs = await workers
  const ok = rs.reduce((a, r) => a + r.ok, mainOk)
  const fail = rs.reduce((a, r) => a + r.fail, mainFail)
  assert.equal(ok + fail, 70_000)
  const s = main.getStats()
  // failureThreshold 1 with a count window of 1000 can trip (effective minimum = size) only if
  // 1000 calls in a row failed: they did not.
  assert.equal(s.state, 'CLOSED')
  assert.equal(s.successCount, ok)
  assert.equal(s.failureCount, fail)
  assert.equal(s.window.calls, 1000)
})

// ---- (d) many breakers x many instances of one name, interleaved --------------------------

test('(d) 24 circuits x 6 instances each, 60,000 interleaved calls, instances created and dropped mid-run: no count lost', async () => {
  let seed = 12345
  const rnd = () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const configs = [
    { timeout: 0 },
    { timeout: 10_000 },
    { timeout: 0, window: { type: 'count', size: 50 } },
    { timeout: 10_000, window: { type: 'time', durationMs: 60_000, buckets: 3 } },
  ]
  const circuits = []
  for (let c = 0; c < 24; c++) {
    const options = { name: uniq(`conc-many-${c}`), logger: null, failureThreshold: 1, minimumRequests: 1e9, ...configs[c % configs.length] }
    // a count window's effective minimum is its size: keep it untrippable with one success in
    // every run of 50 (below)
    const instances = Array.from({ length: 6 }, () => new CircuitBreaker(options))
    circuits.push({ options, instances, ok: 0, fail: 0, sinceOk: 0 })
  }
  const CALLS = 60_000
  let pending = []
  for (let i = 0; i < CALLS; i++) {
    const c = circuits[Math.floor(rnd() * circuits.length)]
    if (rnd() < 0.002) c.instances[Math.floor(rnd() * 6)] = new CircuitBreaker(c.options) // replace one; the old one may be collected
    const b = c.instances[Math.floor(rnd() * c.instances.length)]
    let fails = rnd() < 0.3
    if (c.sinceOk >= 40) fails = false
    if (fails) c.sinceOk++
    else c.sinceOk = 0
    const kind = Math.floor(rnd() * 3)
    const action = kind === 0
      ? () => { if (fails) throw new Error('f'); return i }
      : kind === 1
        ? () => (fails ? Promise.reject(new Error('f')) : Promise.resolve(i))
        : () => new Promise((res, rej) => setImmediate(() => (fails ? rej(new Error('f')) : res(i))))
    if (fails) c.fail++
    else c.ok++
    pending.push(b.execute(action).then(() => true, (e) => {
      assert.equal(e.message, 'f', `unexpected rejection: ${e}`)
      return false
    }))
    if (pending.length >= 200 + Math.floor(rnd() * 800)) {
      await Promise.all(pending)
      pending = []
      if (rnd() < 0.2 && global.gc) global.gc()
    }
  }
  await Promise.all(pending)
  const all = getAllCircuitBreakerStats()
  for (const c of circuits) {
    const expected = { ok: c.ok, fail: c.fail }
    for (const b of c.instances) {
      const s = b.getStats()
      assert.deepEqual({ ok: s.successCount, fail: s.failureCount }, expected, c.options.name)
      assert.equal(s.state, 'CLOSED')
      assert.equal(s.totalRequests, c.ok + c.fail)
    }
    assert.equal(all[c.options.name].successCount, c.ok)
    assert.equal(all[c.options.name].failureCount, c.fail)
  }
})

// ---- (e) a trip in one worker is seen by another worker and by the main thread ----------

const TRIP_WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const { CircuitBreaker, CircuitBreakerOpenError } = require(${JSON.stringify(ROOT)})
;(async () => {
  const b = new CircuitBreaker(workerData.options)
  // warm the fast path first: after the first call of a clock tick (timed), calls skip the general path while CLOSED
  for (let i = 0; i < 200; i++) await b.execute(() => i)
  if (workerData.role === 'tripper') {
    for (let i = 0; i < workerData.failures; i++) await b.execute(() => Promise.reject(new Error('w'))).catch(() => {})
    parentPort.postMessage({ state: b.state })
    return
  }
  parentPort.postMessage({ ready: true })
  await new Promise((r) => parentPort.once('message', r))
  let ran = 0
  const out = []
  for (let i = 0; i < 50; i++) {
    out.push(await b.execute(() => { ran++; return 'ran' }).then(
      (v) => ({ v }),
      (e) => ({ name: e.name, isOpen: e instanceof CircuitBreakerOpenError, state: e.state, circuit: e.circuit })))
  }
  parentPort.postMessage({ ran, out, state: b.state })
})().catch((e) => parentPort.postMessage({ error: String(e && e.stack) }))
`

test('(e) a circuit tripped in one worker rejects in another worker and in the main thread without running the action', async () => {
  const options = { name: uniq('conc-trip'), logger: null, timeout: 0, consecutiveFailures: 3, resetTimeout: 30_000 }
  const main = new CircuitBreaker(options)
  for (let i = 0; i < 100; i++) await main.execute(() => i) // warm main's fast path too
  let observer
  const ready = deferred()
  const observerDone = runEval(TRIP_WORKER, { options, role: 'observer' }, (m, w) => {
    if (m && m.ready) {
      observer = w
      ready.resolve()
      return true
    }
    return false
  })
  await ready.promise
  const t = await runEval(TRIP_WORKER, { options, role: 'tripper', failures: 3 })
  assert.equal(t.state, 'OPEN')
  observer.postMessage('go')
  const o = await observerDone
  assert.equal(o.ran, 0, 'the observer worker ran an action on an OPEN circuit')
  for (const r of o.out) assert.deepEqual(r, { name: 'CircuitBreakerOpenError', isOpen: true, state: 'OPEN', circuit: options.name })
  assert.equal(o.state, 'OPEN')

  let ran = 0
  for (let i = 0; i < 50; i++) {
    await assert.rejects(main.execute(() => { ran++ }), (e) => e instanceof CircuitBreakerOpenError && e.state === 'OPEN')
  }
  assert.equal(ran, 0, 'the main thread ran an action on an OPEN circuit')
  assert.equal(main.state, 'OPEN')
  const s = main.getStats()
  assert.equal(s.failureCount, 3)
  assert.equal(s.successCount, 100 + 200 + 200)
  assert.equal(s.rejectionCount, 100)
  assert.equal(s.totalRequests, 603)
})

test('(e) close() in the main thread reopens the flow in a worker at once', async () => {
  const options = { name: uniq('conc-close'), logger: null, timeout: 0, consecutiveFailures: 1, resetTimeout: 30_000 }
  const main = new CircuitBreaker(options)
  await failN(main, 1)
  assert.equal(main.state, 'OPEN')
  main.close()
  const code = `
    const { parentPort, workerData } = require('node:worker_threads')
    const { CircuitBreaker } = require(${JSON.stringify(ROOT)})
    const b = new CircuitBreaker(workerData.options)
    let ran = 0
    Promise.all(Array.from({ length: 100 }, () => b.execute(() => { ran++ }))).then(
      () => parentPort.postMessage({ ran, state: b.state }),
      (e) => parentPort.postMessage({ error: String(e) }))
  `
  const r = await runEval(code, { options })
  assert.deepEqual(r, { ran: 100, state: 'CLOSED' })
  await okN(main, 1)
  assert.ok(await waitFor(() => main.getStats().successCount === 101))
})
