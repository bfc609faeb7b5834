'use strict'
// Windows: time buckets age by elapsed time (not by calls); count windows keep the last N;
// both cost O(1) per call whatever their size.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { CircuitBreaker } = require('..')
const { uniq, sleep, failN, okN } = require('./helpers.js')

const mk = (extra = {}) => new CircuitBreaker({ name: uniq('windows'), logger: null, timeout: 0, ...extra })

test('time window: failures age out by elapsed time, with no calls in between', async () => {
  const b = mk({ failureThreshold: 0.5, minimumRequests: 4, window: { type: 'time', durationMs: 300, buckets: 3 } })
  await failN(b, 3)
  assert.equal(b.getStats().window.failures, 3)
  await sleep(420) // > durationMs + one bucket + clock slack
  const s = b.getStats()
  assert.deepEqual(s.window, { calls: 0, failures: 0, successes: 0, slowCalls: 0 })
  assert.equal(s.failureRate, 0)
  // the three old failures no longer help trip the circuit
  await failN(b, 1)
  assert.equal(b.state, 'CLOSED')
  assert.equal(b.getStats().window.calls, 1)
  // lifetime counters do not age
  assert.equal(b.getStats().failureCount, 4)
})

test('time window: batched successes age out too', async () => {
  const b = mk({ minimumRequests: 5, window: { type: 'time', durationMs: 200, buckets: 4 } })
  await okN(b, 40)
  assert.equal(b.getStats().window.successes, 40)
  await sleep(320)
  const s = b.getStats()
  assert.equal(s.window.calls, 0)
  assert.equal(s.successCount, 40)
})

test('time window: buckets age one at a time (older bucket leaves first)', async () => {
  // 4 buckets of 150 ms: failures at ~0 leave by ~600 ms, successes at ~350 ms stay until > 800 ms
  const b = mk({ minimumRequests: 1000, window: { type: 'time', durationMs: 600, buckets: 4 } })
  await failN(b, 2)
  await sleep(350)
  await okN(b, 3)
  const mid = b.getStats().window
  assert.equal(mid.calls, 5)
  // after the first calls' bucket has left but before the second calls' one has
  await sleep(330)
  const later = b.getStats().window
  assert.equal(later.failures, 0, 'the older failures aged out')
  assert.equal(later.successes, 3, 'the newer successes are still in the window')
})

test('time window: calls made while the old ones age still trip within the window', async () => {
  const b = mk({ failureThreshold: 0.5, minimumRequests: 4, window: { type: 'time', durationMs: 500, buckets: 5 } })
  await failN(b, 2)
  await sleep(150)
  await failN(b, 2)
  assert.equal(b.state, 'OPEN', '4 failures within 500 ms')
})

test('count window: the window holds at most `size` calls and evicts the oldest', async () => {
  const b = mk({ failureThreshold: 1, minimumRequests: 1000, window: { type: 'count', size: 5 } })
  await failN(b, 4)
  await okN(b, 4)
  const s = b.getStats()
  assert.equal(b.state, 'CLOSED')
  assert.deepEqual(s.window, { calls: 5, failures: 1, successes: 4, slowCalls: 0 })
  assert.equal(s.failureRate, 20)
})

test('count window does not age by time', async () => {
  const b = mk({ minimumRequests: 1000, window: { type: 'count', size: 10 } })
  await failN(b, 3)
  await sleep(150)
  assert.equal(b.getStats().window.failures, 3)
})

test('a huge count window is created instantly and costs about the same per call as a tiny one', async () => {
  const measure = async (window) => {
    const b = mk({ minimumRequests: 1_000_000, window })
    const t = performance.now()
    for (let i = 0; i < 3000; i++) {
      await b.execute(() => 1)
      if (i % 3 === 0) await b.execute(() => Promise.reject(new Error('x'))).catch(() => {})
    }
    return performance.now() - t
  }
  const t0 = performance.now()
  mk({ window: { type: 'count', size: 1_000_000 } })
  assert.ok(performance.now() - t0 < 500, 'creating a 1e6 count window')
  await measure({ type: 'count', size: 10 }) // warm-up
  const small = await measure({ type: 'count', size: 10 })
  const big = await measure({ type: 'count', size: 1_000_000 })
  assert.ok(big < small * 5 + 50, `O(1) per call: size 10 took ${small.toFixed(1)} ms, size 1e6 took ${big.toFixed(1)} ms`)
  const tinyT = await measure({ type: 'time', durationMs: 1000, buckets: 1 })
  const manyT = await measure({ type: 'time', durationMs: 1000, buckets: 1000 })
  assert.ok(manyT < tinyT * 5 + 50, `O(1) per call: 1 bucket took ${tinyT.toFixed(1)} ms, 1000 buckets took ${manyT.toFixed(1)} ms`)
})

test('default window is a 60 s time window in 10 buckets', async () => {
  const b = mk({ minimumRequests: 3 })
  await failN(b, 2)
  await sleep(50)
  assert.equal(b.getStats().window.failures, 2, 'still in a 60 s window')
})

test('time window ages correctly across an idle period (the coarse clock parks, Lambda-freeze style)', async () => {
  const b = mk({ failureThreshold: 1, minimumRequests: 4, timeout: 50, window: { type: 'time', durationMs: 300, buckets: 3 } })
  await failN(b, 3)
  await okN(b, 5)
  await sleep(2_600) // longer than the clock thread's idle limit
  assert.deepEqual(b.getStats().window, { calls: 0, failures: 0, successes: 0, slowCalls: 0 })
  // timeouts still fire on time, not early
  const t = Date.now()
  await assert.rejects(b.execute(() => sleep(400)), { name: 'CircuitBreakerTimeoutError' })
  const took = Date.now() - t
  assert.ok(took >= 45 && took < 250, `timeout after idle took ${took} ms`)
  await okN(b, 20)
  const s = b.getStats()
  assert.equal(s.window.calls, 21)
  assert.equal(s.successCount, 25)
  await sleep(420)
  assert.equal(b.getStats().window.calls, 0)
})
