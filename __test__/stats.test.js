'use strict'
// getStats(): fields, units, JSON, timestamps, retryAfterMs, latency.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { CircuitBreaker } = require('..')
const { uniq, sleep, okN, failN } = require('./helpers.js')

const mk = (extra = {}) => new CircuitBreaker({ name: uniq('stats'), logger: null, timeout: 0, ...extra })

const FIELDS = [
  'name', 'state', 'enabled',
  'totalRequests', 'successCount', 'failureCount', 'rejectionCount', 'timeoutCount', 'fallbackCount', 'ignoredCount', 'slowCallCount',
  'window', 'failureRate', 'slowCallRate', 'consecutiveFailures', 'consecutiveSuccesses', 'latencyMs',
  'lastFailureAt', 'lastSuccessAt', 'stateChangedAt', 'nextAttemptAt', 'retryAfterMs', 'store',
  'failureThreshold', 'minimumRequests', 'timeout', 'resetTimeout',
]

test('a fresh breaker has every documented field with zero values', () => {
  const before = Date.now()
  const b = mk({ failureThreshold: 0.4, minimumRequests: 7, timeout: 1234, resetTimeout: 5678 })
  const s = b.getStats()
  for (const f of FIELDS) assert.ok(f in s, `missing field ${f}`)
  assert.equal(s.name, b.name)
  assert.equal(s.state, 'CLOSED')
  assert.equal(s.enabled, true)
  for (const f of ['totalRequests', 'successCount', 'failureCount', 'rejectionCount', 'timeoutCount', 'fallbackCount', 'ignoredCount', 'slowCallCount', 'consecutiveFailures', 'consecutiveSuccesses']) {
    assert.equal(s[f], 0, f)
  }
  assert.deepEqual(s.window, { calls: 0, failures: 0, successes: 0, slowCalls: 0 })
  assert.equal(s.failureRate, 0)
  assert.equal(s.slowCallRate, 0)
  assert.deepEqual(Object.keys(s.latencyMs).sort(), ['max', 'mean', 'p50', 'p90', 'p99'])
  assert.equal(s.lastFailureAt, null)
  assert.equal(s.lastSuccessAt, null)
  assert.equal(s.nextAttemptAt, null)
  assert.equal(s.retryAfterMs, null)
  assert.equal(s.store, null)
  assert.ok(s.stateChangedAt >= before - 20 && s.stateChangedAt <= Date.now() + 20, 'stateChangedAt is epoch ms')
  assert.equal(s.failureThreshold, 0.4)
  assert.equal(s.minimumRequests, 7)
  assert.equal(s.timeout, 1234)
  assert.equal(s.resetTimeout, 5678)
})

test('stats is a plain object that survives a JSON round trip unchanged', async () => {
  const b = mk({ consecutiveFailures: 2, resetTimeout: 10_000 })
  await okN(b, 3)
  await failN(b, 2)
  const s = b.getStats()
  assert.equal(Object.getPrototypeOf(s), Object.prototype)
  assert.deepEqual(JSON.parse(JSON.stringify(s)), s)
  for (const v of Object.values(s)) {
    if (typeof v === 'number') assert.ok(Number.isFinite(v), 'no NaN/Infinity in stats')
  }
})

test('failureRate is a percentage 0-100 of the window', async () => {
  const b = mk({ minimumRequests: 1000, window: { type: 'count', size: 100 } })
  await okN(b, 3)
  await failN(b, 1)
  assert.equal(b.getStats().failureRate, 25)
  await failN(b, 2)
  assert.equal(b.getStats().failureRate, 50)
  const c = mk({ minimumRequests: 1000 })
  await failN(c, 3)
  assert.equal(c.getStats().failureRate, 100)
})

test('failureRate compares with failureThreshold: OPEN exactly when rate >= threshold*100', async () => {
  const b = mk({ failureThreshold: 0.3, minimumRequests: 10, window: { type: 'count', size: 10 } })
  await okN(b, 7)
  await failN(b, 2)
  assert.equal(b.state, 'CLOSED')
  await failN(b, 1)
  const s = b.getStats()
  assert.equal(s.state, 'OPEN')
  assert.equal(s.failureRate, 30)
  assert.ok(s.failureRate >= s.failureThreshold * 100)
})

test('lastFailureAt / lastSuccessAt are epoch ms of the last outcome', async () => {
  const b = mk({ minimumRequests: 1000 })
  const t0 = Date.now()
  await okN(b, 1)
  await failN(b, 1)
  const s = b.getStats()
  const now = Date.now()
  assert.ok(s.lastFailureAt >= t0 - 15 && s.lastFailureAt <= now + 15, `lastFailureAt ${s.lastFailureAt - t0}`)
  // successes are batched: exact to the bucket resolution
  assert.ok(s.lastSuccessAt >= t0 - 6_100 && s.lastSuccessAt <= now + 15, `lastSuccessAt ${s.lastSuccessAt - t0}`)
})

test('OPEN: nextAttemptAt = trip time + resetTimeout and retryAfterMs counts down to it', async () => {
  const b = mk({ consecutiveFailures: 1, resetTimeout: 500 })
  const t0 = Date.now()
  await failN(b, 1)
  const s = b.getStats()
  assert.equal(s.state, 'OPEN')
  assert.ok(Math.abs(s.nextAttemptAt - (t0 + 500)) < 30, `nextAttemptAt off by ${s.nextAttemptAt - t0 - 500}`)
  assert.ok(s.retryAfterMs > 400 && s.retryAfterMs <= 500, `retryAfterMs ${s.retryAfterMs}`)
  assert.ok(Math.abs(s.stateChangedAt - t0) < 30)
  await sleep(100)
  const s2 = b.getStats()
  assert.ok(s2.retryAfterMs <= s.retryAfterMs - 80, 'retryAfterMs decreases')
})

test('retryAfterMs: null when CLOSED, null when forced open, 0 in HALF_OPEN', async () => {
  const b = mk()
  assert.equal(b.getStats().retryAfterMs, null)
  b.open()
  let s = b.getStats()
  assert.equal(s.state, 'OPEN')
  assert.equal(s.retryAfterMs, null)
  assert.equal(s.nextAttemptAt, null)
  b.halfOpen()
  s = b.getStats()
  assert.equal(s.state, 'HALF_OPEN')
  assert.equal(s.retryAfterMs, 0)
  assert.equal(s.nextAttemptAt, null)
})

test('getStats moves an OPEN circuit past its resetTimeout to HALF_OPEN', async () => {
  const b = mk({ consecutiveFailures: 1, resetTimeout: 50 })
  await failN(b, 1)
  await sleep(80)
  const s = b.getStats()
  assert.equal(s.state, 'HALF_OPEN')
  assert.equal(s.retryAfterMs, 0)
})

test('latencyMs reflects call durations (ms) over the window', async () => {
  // slowCallDurationMs makes every call timed
  const b = mk({ slowCallDurationMs: 10_000, minimumRequests: 1000 })
  for (let i = 0; i < 8; i++) await b.execute(() => sleep(30))
  const { latencyMs: l } = b.getStats()
  assert.ok(l.p50 >= 25 && l.p50 < 80, `p50 ${l.p50}`)
  assert.ok(l.mean >= 25 && l.mean < 80, `mean ${l.mean}`)
  assert.ok(l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max * 1.1, JSON.stringify(l))
  assert.ok(l.max >= 27 && l.max < 150, `max ${l.max}`)
})

test('latency sampled on the default path too (the first call of each tick of the clock)', async () => {
  const b = mk({ minimumRequests: 1000 })
  for (let i = 0; i < 64; i++) await b.execute(() => sleep(i % 16 === 0 ? 15 : 0))
  const { latencyMs: l } = b.getStats()
  assert.ok(l.max > 0, `some latency recorded: ${JSON.stringify(l)}`)
})

test('a breaker called less often than every 5 ms has every call in its latency histogram', async () => {
  const { toPrometheus } = require('..')
  const b = mk({ minimumRequests: 1000 })
  // More than 16 calls: the histogram used to take the first 16 calls and then 1 in 16.
  for (let i = 0; i < 20; i++) {
    await b.execute(async () => i)
    await sleep(30)
  }
  const line = toPrometheus().split('\n').find((l) => l.startsWith(`circuit_breaker_call_duration_seconds_count{name="${b.name}"}`))
  assert.equal(Number(line.split(' ').pop()), 20, line)
})

test('fallbackCount and timeoutCount are counted', async () => {
  const b = mk({ timeout: 20, fallback: () => 'fb', minimumRequests: 1000 })
  await b.execute(() => sleep(200))
  await b.execute(() => Promise.reject(new Error('x')))
  const s = b.getStats()
  assert.equal(s.fallbackCount, 2)
  assert.equal(s.timeoutCount, 1)
  assert.equal(s.failureCount, 2)
})

test('consecutiveSuccesses and consecutiveFailures track current runs', async () => {
  const b = mk({ minimumRequests: 1000 })
  await okN(b, 3)
  assert.equal(b.getStats().consecutiveSuccesses, 3)
  await failN(b, 2)
  let s = b.getStats()
  assert.equal(s.consecutiveSuccesses, 0)
  assert.equal(s.consecutiveFailures, 2)
  await okN(b, 1)
  s = b.getStats()
  assert.equal(s.consecutiveFailures, 0)
  assert.equal(s.consecutiveSuccesses, 1)
})

test('stats reflect defaults for the configuration in force', () => {
  const b = new CircuitBreaker({ name: uniq('stats-defaults'), logger: null })
  const s = b.getStats()
  assert.equal(s.failureThreshold, 0.5)
  assert.equal(s.minimumRequests, 10)
  assert.equal(s.timeout, 30_000)
  assert.equal(s.resetTimeout, 60_000)
})

test('getStats() from a listener that getStats() itself set off: each call returns its own circuit', async () => {
  const { CircuitBreaker: CB } = require('..')
  const a = new CB({ name: 'stats-nested-a', logger: null, timeout: 0, consecutiveFailures: 1, resetTimeout: 20 })
  const b = new CB({ name: 'stats-nested-b', logger: null, timeout: 0 })
  await b.execute(() => 'b1')
  await b.execute(() => 'b2')
  await a.execute(() => Promise.reject(new Error('down'))).catch(() => {})
  let inner = null
  a.on('halfOpen', () => {
    inner = b.getStats()
  })
  await new Promise((r) => setTimeout(r, 40))
  // this read moves a to HALF_OPEN (resetTimeout passed) and calls the listener, which reads b
  const sa = a.getStats()
  assert.ok(inner !== null, 'the listener ran inside getStats()')
  assert.equal(inner.name, 'stats-nested-b')
  assert.equal(inner.successCount, 2)
  assert.equal(sa.name, 'stats-nested-a')
  assert.equal(sa.failureCount, 1)
  assert.equal(sa.successCount, 0)
  a.dispose()
  b.dispose()
})
