'use strict'
// Per-call timeouts shared across breakers (lib/deadlines.js): one deadline queue and one timer
// per timeout value serve every breaker of a thread. What users rely on: with hundreds of
// breakers (one per tenant), every call that hangs times out at its own deadline, never
// before, whichever breaker it belongs to and whenever it started; calls that settle are not
// timed out; a disposed breaker's pending call still times out; per-call timeouts of many
// different values each keep their own.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { CircuitBreaker, CircuitBreakerTimeoutError } = require('..')

const hang = () => new Promise(() => {})
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
let seq = 0
// The deadline timer is unref'd (pending deadlines never keep a process alive), and a hung
// action holds nothing else: keep the loop running while the tests wait.
let alive
before(() => {
  alive = setInterval(() => {}, 1000)
})
after(() => clearInterval(alive))
const make = (opts) => new CircuitBreaker({ name: `deadlines-${++seq}`, logger: null, ...opts })

/** Starts `execute` and records when it settles, relative to its own start (ms). */
function timedCall(b, action, opts) {
  const t0 = performance.now()
  return b.execute(action, opts).then(
    (value) => ({ ok: true, value, ms: performance.now() - t0 }),
    (error) => ({ ok: false, error, ms: performance.now() - t0 }),
  )
}

test('300 breakers with one timeout: hung calls started at different times each time out at their own deadline', async () => {
  const TIMEOUT = 150
  const breakers = Array.from({ length: 300 }, () => make({ timeout: TIMEOUT }))
  const results = []
  // Three waves 40 ms apart; in each, even breakers hang and odd ones answer after 10 ms.
  for (let wave = 0; wave < 3; wave++) {
    for (let i = wave; i < breakers.length; i += 3) {
      const action = i % 2 === 0 ? hang : () => sleep(10).then(() => i)
      results.push(timedCall(breakers[i], action).then((r) => ({ ...r, i })))
    }
    await sleep(40)
  }
  const all = await Promise.all(results)
  assert.equal(all.length, 300)
  for (const r of all) {
    if (r.i % 2 === 0) {
      assert.ok(r.error instanceof CircuitBreakerTimeoutError, `breaker ${r.i}: ${r.error}`)
      assert.equal(r.error.timeoutMs, TIMEOUT)
      // never early (a timer may fire ~1 ms before its nominal time by rounding only)
      assert.ok(r.ms >= TIMEOUT - 1, `breaker ${r.i} timed out after ${r.ms.toFixed(1)} ms`)
      assert.ok(r.ms < TIMEOUT + 2000, `breaker ${r.i} timed out after ${r.ms.toFixed(1)} ms`)
      assert.equal(breakers[r.i].getStats().timeoutCount, 1)
    } else {
      assert.deepEqual([r.ok, r.value], [true, r.i])
      assert.equal(breakers[r.i].getStats().timeoutCount, 0)
      assert.equal(breakers[r.i].getStats().successCount, 1)
    }
  }
  for (const b of breakers) b.dispose()
})

test('a breaker disposed while its call hangs: the call still times out, and the other breakers are unaffected', async () => {
  const a = make({ timeout: 80 })
  const b = make({ timeout: 80 })
  const pa = timedCall(a, hang)
  const pb = timedCall(b, hang)
  a.dispose()
  const [ra, rb] = await Promise.all([pa, pb])
  assert.ok(ra.error instanceof CircuitBreakerTimeoutError)
  assert.ok(rb.error instanceof CircuitBreakerTimeoutError)
  assert.ok(ra.ms >= 79 && rb.ms >= 79, `${ra.ms} ${rb.ms}`)
  assert.equal(b.getStats().timeoutCount, 1)
  b.dispose()
})

test('per-call timeouts of many different values, over several breakers, each time out at their own value', async () => {
  const breakers = Array.from({ length: 5 }, () => make({ timeout: 10_000 }))
  const calls = []
  for (let k = 0; k < 60; k++) {
    const timeout = 20 + k * 3 // 60 different values, 20..197 ms
    calls.push(timedCall(breakers[k % 5], hang, { timeout }).then((r) => ({ ...r, timeout })))
  }
  // and calls on the breakers' own (long) timeout that answer
  for (const b of breakers) calls.push(timedCall(b, async () => 'ok').then((r) => ({ ...r, timeout: null })))
  for (const r of await Promise.all(calls)) {
    if (r.timeout === null) {
      assert.equal(r.value, 'ok')
      continue
    }
    assert.ok(r.error instanceof CircuitBreakerTimeoutError, String(r.error))
    assert.equal(r.error.timeoutMs, r.timeout)
    assert.ok(r.ms >= r.timeout - 1 && r.ms < r.timeout + 2000, `timeout ${r.timeout}: settled after ${r.ms.toFixed(1)} ms`)
  }
  assert.equal(breakers.reduce((n, b) => n + b.getStats().timeoutCount, 0), 60)
  for (const b of breakers) b.dispose()
})

test('a settled call does not keep its fallback alive until its deadline (a disposed tenant breaker is collected)', async () => {
  const v8 = require('node:v8')
  const vm = require('node:vm')
  v8.setFlagsFromString('--expose-gc')
  const gc = vm.runInNewContext('gc')
  let collected = 0
  const registry = new FinalizationRegistry(() => collected++)
  // Another breaker with the same timeout keeps a call in flight the whole time, so the
  // deadline queue is never drained by its timer (the deadline is an hour away).
  const other = make({ timeout: 3_600_000 })
  const pending = other.execute(hang).catch(() => {})
  // (in a function of its own: a suspended async function keeps its last values in registers)
  const tenants = async () => {
    for (let i = 0; i < 20; i++) {
      // A tenant's breaker whose fallback holds the tenant's data; called once, then disposed.
      const data = { tenant: i, blob: new Array(1000).fill(i) }
      const b = make({ timeout: 3_600_000, fallback: () => data.tenant })
      registry.register(data, i)
      assert.equal(await b.execute(async () => 'ok'), 'ok')
      b.dispose()
    }
  }
  await tenants()
  // A newer call of the same timeout value passes the settled ones at the queue's head.
  await other.execute(async () => 1)
  for (let i = 0; i < 10 && collected < 20; i++) {
    gc()
    await sleep(10)
  }
  assert.equal(collected, 20, 'the fallbacks of settled calls are still reachable')
  void pending
})
