'use strict'
// Generations (gobreaker's TestGeneration): each time the circuit leaves CLOSED a new
// generation begins; a call admitted in an earlier one counts in the lifetime counters only —
// never in a later CLOSED window, and it can never trip, close or re-open the circuit.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { CircuitBreaker } = require('..')
const { uniq, sleep, failN, okN, deferred } = require('./helpers.js')

const mk = (extra) => new CircuitBreaker({ name: uniq('gen'), logger: null, timeout: 0, minimumRequests: 5, resetTimeout: 60_000, ...extra })

/** Runs `n` calls that hang until the returned `fail(i)` / `succeed(i)` settles them. */
function admit(b, n) {
  const ds = Array.from({ length: n }, () => deferred())
  const results = ds.map((d) => b.execute(() => d.promise).then((v) => ({ v }), (e) => ({ e })))
  return { ds, results }
}

/** An outage that trips the circuit, then a probe that closes it again. */
async function outageAndRecovery(b) {
  await failN(b, 5)
  assert.equal(b.state, 'OPEN')
  b.halfOpen()
  assert.equal(await b.execute(() => 'probe'), 'probe')
  assert.equal(b.state, 'CLOSED')
}

for (const warm of [0, 40]) {
  // warm: after the first call of a clock tick (timed), plain calls take the fast path (handlers per generation)
  test(`late failures of calls admitted before an outage leave the recovered circuit alone${warm ? ' (fast path)' : ''}`, async () => {
    const b = mk()
    await okN(b, warm)
    b.reset()
    const old = admit(b, 5)
    await outageAndRecovery(b)
    const before = b.getStats()
    for (const d of old.ds) d.reject(new Error('late'))
    for (const r of await Promise.all(old.results)) assert.equal(r.e.message, 'late')
    const s = b.getStats()
    assert.equal(s.state, 'CLOSED', '5 late failures of the old generation re-opened the circuit')
    assert.deepEqual(s.window, { calls: 0, failures: 0, successes: 0, slowCalls: 0 })
    assert.equal(s.consecutiveFailures, 0)
    // the lifetime counters do hold them
    assert.equal(s.failureCount, before.failureCount + 5)
    // and the fresh window still works: 5 new failures trip it
    await failN(b, 5)
    assert.equal(b.state, 'OPEN')
  })
}

test('late successes of an old generation do not dilute the fresh window', async () => {
  const b = mk()
  await okN(b, 40)
  b.reset()
  const old = admit(b, 20)
  await outageAndRecovery(b)
  for (const d of old.ds) d.resolve('late')
  await Promise.all(old.results)
  const s = b.getStats()
  assert.equal(s.window.calls, 0)
  assert.equal(s.successCount, 1 + 20)
  // 3 failures of 5 calls in the new generation: 60% trips, as if the 20 old successes never came
  await okN(b, 2)
  await failN(b, 3)
  assert.equal(b.state, 'OPEN')
})

test('timed calls: late outcomes and late timeouts of an old generation go to the lifetime counters only', async () => {
  const b = mk({ timeout: 400 })
  await okN(b, 40)
  b.reset()
  const lateFail = admit(b, 3)
  const hung = admit(b, 3) // these will time out after the circuit recovered
  await outageAndRecovery(b)
  for (const d of lateFail.ds) d.reject(new Error('late'))
  await Promise.all(lateFail.results)
  // the breaker's deadline timer does not keep a process alive; the test must
  const alive = setTimeout(() => {}, 5_000)
  const timedOut = await Promise.all(hung.results)
  clearTimeout(alive)
  for (const r of timedOut) assert.equal(r.e.name, 'CircuitBreakerTimeoutError')
  const s = b.getStats()
  assert.equal(s.state, 'CLOSED')
  assert.equal(s.window.calls, 0)
  assert.equal(s.timeoutCount, 3)
  assert.equal(s.failureCount, 5 + 3 + 3)
})

test('a call admitted while CLOSED that fails during HALF_OPEN neither re-opens nor closes it', async () => {
  const b = mk()
  const old = admit(b, 1)
  await failN(b, 5)
  b.halfOpen()
  old.ds[0].reject(new Error('late'))
  await old.results[0]
  assert.equal(b.state, 'HALF_OPEN')
  assert.equal(await b.execute(() => 'probe'), 'probe')
  assert.equal(b.state, 'CLOSED')
})

test('another thread moving the circuit on ends this thread\'s generation too', async () => {
  const { Worker } = require('node:worker_threads')
  const path = require('node:path')
  const options = { name: uniq('gen-worker'), logger: null, timeout: 0, minimumRequests: 5, resetTimeout: 60_000 }
  const b = new CircuitBreaker(options)
  await okN(b, 40)
  b.reset()
  const old = admit(b, 5)
  // the outage and the recovery happen in a worker
  const code = `
    const { workerData } = require('node:worker_threads')
    const { CircuitBreaker } = require(workerData.root)
    const w = new CircuitBreaker(workerData.options)
    ;(async () => {
      for (let i = 0; i < 5; i++) await w.execute(() => Promise.reject(new Error('down'))).catch(() => {})
      w.halfOpen()
      await w.execute(() => 'probe')
    })()
  `
  const w = new Worker(code, { eval: true, workerData: { root: path.join(__dirname, '..'), options } })
  assert.equal(await new Promise((r) => w.once('exit', r)), 0)
  await sleep(20)
  for (const d of old.ds) d.reject(new Error('late'))
  await Promise.all(old.results)
  const s = b.getStats()
  assert.equal(s.state, 'CLOSED')
  assert.equal(s.window.calls, 0)
})
