'use strict'
// Manual control: open(), open(ms), close(), halfOpen(), reset(); state getter; name.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { CircuitBreaker, CircuitBreakerOpenError } = require('..')
const { uniq, sleep, ok, okN, failN } = require('./helpers.js')

const mk = (extra = {}) => new CircuitBreaker({ name: uniq('control'), logger: null, timeout: 0, ...extra })

test('name is the circuit name', () => {
  const name = uniq('control-name')
  assert.equal(new CircuitBreaker({ name, logger: null }).name, name)
})

test('open() forces OPEN until close(), ignoring resetTimeout', async () => {
  const b = mk({ resetTimeout: 30 })
  b.open()
  assert.equal(b.state, 'OPEN')
  await sleep(70)
  assert.equal(b.state, 'OPEN', 'forced open does not half-open after resetTimeout')
  await assert.rejects(b.execute(ok()), CircuitBreakerOpenError)
  b.close()
  assert.equal(b.state, 'CLOSED')
  assert.equal(await b.execute(ok('x')), 'x')
})

test('open() then halfOpen() leaves maintenance', async () => {
  const b = mk()
  b.open()
  b.halfOpen()
  assert.equal(b.state, 'HALF_OPEN')
  assert.equal(await b.execute(ok('probe')), 'probe')
  assert.equal(b.state, 'CLOSED')
})

test('open() then reset() leaves maintenance', () => {
  const b = mk()
  b.open()
  b.reset()
  assert.equal(b.state, 'CLOSED')
})

test('open() on a tripped circuit makes it forced', async () => {
  const b = mk({ consecutiveFailures: 1, resetTimeout: 40 })
  await failN(b, 1)
  b.open()
  await sleep(70)
  assert.equal(b.state, 'OPEN')
  assert.equal(b.getStats().retryAfterMs, null)
})

test('open(ms) opens like a trip and half-opens after that long', async () => {
  const b = mk({ resetTimeout: 60_000 })
  b.open(60)
  assert.equal(b.state, 'OPEN')
  const s = b.getStats()
  assert.ok(s.retryAfterMs > 30 && s.retryAfterMs <= 60, `retryAfterMs ${s.retryAfterMs}`)
  await sleep(90)
  assert.equal(b.state, 'HALF_OPEN')
})

test('open(ms) validates its argument', () => {
  const b = mk()
  assert.throws(() => b.open(-1), RangeError)
  assert.throws(() => b.open('10'), TypeError)
  assert.equal(b.state, 'CLOSED')
})

test('close() from OPEN: CLOSED with a fresh window, lifetime counters kept', async () => {
  const b = mk({ consecutiveFailures: 2, resetTimeout: 10_000 })
  await okN(b, 1)
  await failN(b, 2)
  b.close()
  const s = b.getStats()
  assert.equal(s.state, 'CLOSED')
  assert.equal(s.window.calls, 0)
  assert.equal(s.consecutiveFailures, 0)
  assert.equal(s.failureCount, 2)
  assert.equal(s.successCount, 1)
})

test('halfOpen() from CLOSED lets probes through', async () => {
  const b = mk({ successThreshold: 2 })
  b.halfOpen()
  assert.equal(b.state, 'HALF_OPEN')
  await okN(b, 1)
  assert.equal(b.state, 'HALF_OPEN')
  await okN(b, 1)
  assert.equal(b.state, 'CLOSED')
})

test('reset(): CLOSED, empty window, zeroed counters', async () => {
  const b = mk({ consecutiveFailures: 2, resetTimeout: 10_000, fallback: () => 'fb' })
  await okN(b, 3)
  await failN(b, 2)
  await b.execute(ok())
  b.reset()
  const s = b.getStats()
  assert.equal(s.state, 'CLOSED')
  for (const f of ['totalRequests', 'successCount', 'failureCount', 'rejectionCount', 'fallbackCount', 'consecutiveFailures', 'consecutiveSuccesses']) {
    assert.equal(s[f], 0, f)
  }
  assert.deepEqual(s.window, { calls: 0, failures: 0, successes: 0, slowCalls: 0 })
  assert.equal(s.lastFailureAt, null)
  assert.equal(s.lastSuccessAt, null)
  assert.equal(s.retryAfterMs, null)
})

test('reset() of a CLOSED circuit zeroes the counters too', async () => {
  const b = mk({ minimumRequests: 1000 })
  await okN(b, 5)
  await failN(b, 1)
  b.reset()
  assert.equal(b.getStats().totalRequests, 0)
  assert.equal(b.getStats().window.calls, 0)
})

test('halfOpenTimeout counts from entering HALF_OPEN by halfOpen()', async () => {
  const b = mk({ halfOpenTimeout: 50, resetTimeout: 10_000 })
  b.halfOpen()
  await sleep(20)
  assert.equal(b.state, 'HALF_OPEN')
  await sleep(60)
  assert.equal(b.state, 'OPEN')
  // it re-opened like a trip, for resetTimeout
  const s = b.getStats()
  assert.ok(s.retryAfterMs > 9_000, `retryAfterMs ${s.retryAfterMs}`)
})

test('control methods on a disposed breaker throw BREAKWATER_DISPOSED', () => {
  const b = mk()
  b.dispose()
  for (const f of ['open', 'close', 'halfOpen', 'reset', 'getStats']) {
    assert.throws(() => b[f](), (e) => e.code === 'BREAKWATER_DISPOSED', f)
  }
})
