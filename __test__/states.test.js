'use strict'
// The state machine: CLOSED -> OPEN (every tripping rule), OPEN -> HALF_OPEN (lazily),
// HALF_OPEN -> CLOSED / OPEN (probes, successThreshold, halfOpenTimeout).
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { CircuitBreaker, CircuitState, CircuitBreakerOpenError } = require('..')
const { uniq, sleep, fail, ok, failN, okN, deferred } = require('./helpers.js')

const mk = (extra = {}) => new CircuitBreaker({ name: uniq('states'), logger: null, timeout: 0, ...extra })

test('a new breaker is CLOSED', () => {
  const b = mk()
  assert.equal(b.state, 'CLOSED')
  assert.equal(b.state, CircuitState.CLOSED)
})

test('CircuitState is a frozen value with the three states', () => {
  assert.deepEqual({ ...CircuitState }, { CLOSED: 'CLOSED', OPEN: 'OPEN', HALF_OPEN: 'HALF_OPEN' })
  assert.ok(Object.isFrozen(CircuitState))
})

test('trips by failure rate only once the window holds minimumRequests calls', async () => {
  const b = mk({ failureThreshold: 0.5, minimumRequests: 4, window: { type: 'count', size: 100 } })
  await failN(b, 3)
  assert.equal(b.state, 'CLOSED', '3 failures of 3 calls, below minimumRequests 4')
  await failN(b, 1)
  assert.equal(b.state, 'OPEN', '4 of 4 failed')
  assert.equal(b.getStats().failureCount, 4)
})

test('failure rate exactly at the threshold trips (>=), below it does not', async () => {
  const below = mk({ failureThreshold: 0.5, minimumRequests: 10, window: { type: 'count', size: 100 } })
  await okN(below, 6)
  await failN(below, 4)
  assert.equal(below.state, 'CLOSED', '4/10 = 40% < 50%')

  const at = mk({ failureThreshold: 0.5, minimumRequests: 10, window: { type: 'count', size: 100 } })
  await okN(at, 5)
  await failN(at, 4)
  assert.equal(at.state, 'CLOSED', '4/9 below the minimum')
  await failN(at, 1)
  assert.equal(at.state, 'OPEN', '5/10 = 50% >= 50%')
})

test('successes that reach minimumRequests can trip when failures already reach the rate', async () => {
  const b = mk({ failureThreshold: 0.5, minimumRequests: 4, window: { type: 'count', size: 100 } })
  await failN(b, 2)
  await okN(b, 1)
  assert.equal(b.state, 'CLOSED')
  await okN(b, 1) // 2 failures / 4 calls = 50%
  assert.equal(b.state, 'OPEN')
})

test('time window: trips by failure rate with default-like window', async () => {
  const b = mk({ failureThreshold: 0.6, minimumRequests: 5, window: { type: 'time', durationMs: 10_000, buckets: 10 } })
  await okN(b, 2)
  await failN(b, 2)
  assert.equal(b.state, 'CLOSED')
  await failN(b, 1) // 3/5 = 60%
  assert.equal(b.state, 'OPEN')
})

test('count window: the effective minimum is min(minimumRequests, size)', async () => {
  const b = mk({ failureThreshold: 1, minimumRequests: 100, window: { type: 'count', size: 3 } })
  await failN(b, 2)
  assert.equal(b.state, 'CLOSED')
  await failN(b, 1)
  assert.equal(b.state, 'OPEN', 'a window of 3 full of failures trips even though minimumRequests is 100')
})

test('count window keeps only the last `size` calls', async () => {
  const b = mk({ failureThreshold: 0.5, minimumRequests: 4, window: { type: 'count', size: 4 } })
  await failN(b, 1)
  await okN(b, 3)
  await okN(b, 1) // the failure falls out of the window
  await failN(b, 1) // 1/4
  assert.equal(b.state, 'CLOSED')
  const s = b.getStats()
  assert.equal(s.window.calls, 4)
  assert.equal(s.window.failures, 1)
  await failN(b, 1) // 2/4 = 50%
  assert.equal(b.state, 'OPEN')
})

test('consecutiveFailures trips after that many failures in a row, whatever the rate', async () => {
  const b = mk({ consecutiveFailures: 3, minimumRequests: 1000, window: { type: 'count', size: 1000 } })
  await okN(b, 20)
  await failN(b, 2)
  await okN(b, 1) // breaks the run
  await failN(b, 2)
  assert.equal(b.state, 'CLOSED')
  assert.equal(b.getStats().consecutiveFailures, 2)
  await failN(b, 1)
  assert.equal(b.state, 'OPEN')
})

test('consecutiveFailures defaults to off', async () => {
  const b = mk({ minimumRequests: 1000 })
  await failN(b, 50)
  assert.equal(b.state, 'CLOSED')
})

test('slowCallRateThreshold trips on slow successes (slowCallDurationMs)', async () => {
  const b = mk({
    slowCallDurationMs: 20, slowCallRateThreshold: 0.5, minimumRequests: 4, window: { type: 'count', size: 10 },
  })
  const slow = () => sleep(40).then(() => 'slow')
  await okN(b, 2)
  await b.execute(slow)
  assert.equal(b.state, 'CLOSED')
  await b.execute(slow) // 2 slow of 4
  assert.equal(b.state, 'OPEN')
  const s = b.getStats()
  assert.equal(s.slowCallCount, 2)
  assert.equal(s.failureCount, 0)
  assert.equal(s.successCount, 4)
})

test('fast calls are not slow', async () => {
  const b = mk({ slowCallDurationMs: 200, slowCallRateThreshold: 0.5, minimumRequests: 2, window: { type: 'count', size: 10 } })
  await okN(b, 10)
  assert.equal(b.state, 'CLOSED')
  assert.equal(b.getStats().slowCallCount, 0)
})

test('shouldTrip(counts) receives the counts and trips when it returns true', async () => {
  const seen = []
  const b = mk({
    minimumRequests: 1000,
    window: { type: 'count', size: 100 },
    shouldTrip: (c) => {
      seen.push({ ...c })
      return c.failures >= 2 && c.consecutiveFailures >= 2
    },
  })
  await okN(b, 1)
  await failN(b, 1)
  assert.equal(b.state, 'CLOSED')
  await failN(b, 1)
  assert.equal(b.state, 'OPEN')
  assert.equal(seen.length, 3)
  assert.deepEqual(seen[2], { calls: 3, failures: 2, successes: 1, slowCalls: 0, consecutiveFailures: 2, consecutiveSuccesses: 0 })
  assert.deepEqual(seen[0], { calls: 1, failures: 0, successes: 1, slowCalls: 0, consecutiveFailures: 0, consecutiveSuccesses: 1 })
})

test('a shouldTrip that throws does not trip and does not break the call', async () => {
  const b = mk({ shouldTrip: () => { throw new Error('bad predicate') } })
  assert.equal(await b.execute(ok(7)), 7)
  await assert.rejects(b.execute(fail('x')), /x/)
  assert.equal(b.state, 'CLOSED')
})

test('OPEN rejects calls without running them', async () => {
  const b = mk({ consecutiveFailures: 1, resetTimeout: 10_000 })
  await failN(b, 1)
  let ran = false
  await assert.rejects(b.execute(() => { ran = true }), CircuitBreakerOpenError)
  assert.equal(ran, false)
  assert.equal(b.getStats().rejectionCount, 1)
})

test('OPEN -> HALF_OPEN lazily on a state read after resetTimeout', async () => {
  const b = mk({ consecutiveFailures: 1, resetTimeout: 80 })
  await failN(b, 1)
  assert.equal(b.state, 'OPEN')
  await sleep(30)
  assert.equal(b.state, 'OPEN', 'not before resetTimeout')
  await sleep(70)
  assert.equal(b.state, 'HALF_OPEN')
})

test('OPEN -> HALF_OPEN lazily on a call after resetTimeout: the call is the probe', async () => {
  const b = mk({ consecutiveFailures: 1, resetTimeout: 60 })
  const events = []
  b.on('stateChange', (e) => events.push(`${e.from}>${e.to}:${e.reason}`))
  await failN(b, 1)
  await sleep(90)
  // no state read before the call
  assert.equal(await b.execute(ok('probe')), 'probe')
  assert.equal(b.state, 'CLOSED')
  assert.deepEqual(events, ['CLOSED>OPEN:consecutiveFailures', 'OPEN>HALF_OPEN:resetTimeout', 'HALF_OPEN>CLOSED:probeSucceeded'])
})

test('HALF_OPEN: at most halfOpenMaxRequests probes in flight, others rejected', async () => {
  const b = mk({ consecutiveFailures: 1, resetTimeout: 10_000, halfOpenMaxRequests: 2, successThreshold: 2 })
  await failN(b, 1)
  b.halfOpen()
  const d1 = deferred()
  const d2 = deferred()
  let runs = 0
  const p1 = b.execute(() => { runs++; return d1.promise })
  const p2 = b.execute(() => { runs++; return d2.promise })
  const err = await b.execute(() => { runs++ }).catch((e) => e)
  assert.ok(err instanceof CircuitBreakerOpenError)
  assert.equal(err.state, 'HALF_OPEN')
  assert.equal(err.retryAfterMs, 0)
  assert.equal(runs, 2)
  d1.resolve(1)
  await p1
  assert.equal(b.state, 'HALF_OPEN', 'one success of successThreshold 2')
  d2.resolve(2)
  await p2
  assert.equal(b.state, 'CLOSED')
})

test('HALF_OPEN: a settled probe frees its slot for the next probe', async () => {
  const b = mk({ consecutiveFailures: 1, resetTimeout: 10_000, successThreshold: 3 })
  await failN(b, 1)
  b.halfOpen()
  await okN(b, 1)
  assert.equal(b.state, 'HALF_OPEN')
  await okN(b, 1)
  assert.equal(b.state, 'HALF_OPEN')
  await okN(b, 1)
  assert.equal(b.state, 'CLOSED')
})

test('successThreshold counts consecutive probe successes; a probe failure re-opens', async () => {
  const b = mk({ consecutiveFailures: 1, resetTimeout: 60, successThreshold: 2 })
  await failN(b, 1)
  await sleep(80)
  await okN(b, 1)
  assert.equal(b.state, 'HALF_OPEN')
  await failN(b, 1)
  assert.equal(b.state, 'OPEN', 'probe failure re-opens')
  const s = b.getStats()
  assert.ok(s.retryAfterMs > 20 && s.retryAfterMs <= 60, `re-opened for another resetTimeout, retryAfterMs=${s.retryAfterMs}`)
  await sleep(80)
  await okN(b, 2)
  assert.equal(b.state, 'CLOSED')
})

test('halfOpenTimeout re-opens a HALF_OPEN circuit whose probe never settles', async () => {
  const b = mk({ consecutiveFailures: 1, resetTimeout: 10_000, halfOpenTimeout: 60 })
  const reasons = []
  b.on('stateChange', (e) => reasons.push(e.reason))
  await failN(b, 1)
  b.halfOpen()
  const hung = deferred()
  const probe = b.execute(() => hung.promise)
  await assert.rejects(b.execute(ok()), CircuitBreakerOpenError) // slot taken
  await sleep(100)
  assert.equal(b.state, 'OPEN')
  assert.equal(reasons.at(-1), 'halfOpenTimeout')
  // the stale probe settling later decides nothing
  hung.resolve('late')
  assert.equal(await probe, 'late')
  assert.equal(b.state, 'OPEN')
})

test('halfOpenTimeout: a HALF_OPEN circuit with no probe at all re-opens too', async () => {
  const b = mk({ consecutiveFailures: 1, resetTimeout: 10_000, halfOpenTimeout: 50 })
  await failN(b, 1)
  b.halfOpen()
  assert.equal(b.state, 'HALF_OPEN')
  await sleep(80)
  assert.equal(b.state, 'OPEN')
})

test('opening keeps the window; closing starts a fresh window and resets consecutive counts', async () => {
  const b = mk({ failureThreshold: 0.5, minimumRequests: 4, window: { type: 'count', size: 10 }, resetTimeout: 50 })
  await okN(b, 2)
  await failN(b, 2)
  assert.equal(b.state, 'OPEN')
  let s = b.getStats()
  assert.deepEqual(s.window, { calls: 4, failures: 2, successes: 2, slowCalls: 0 })
  assert.equal(s.failureRate, 50)
  assert.equal(s.consecutiveFailures, 2)
  await sleep(70)
  await okN(b, 1) // probe closes
  assert.equal(b.state, 'CLOSED')
  s = b.getStats()
  assert.equal(s.window.calls, 0, 'fresh window after closing')
  assert.equal(s.failureRate, 0)
  assert.equal(s.consecutiveFailures, 0)
  assert.equal(s.consecutiveSuccesses, 0)
  // lifetime counters are not reset by closing
  assert.equal(s.failureCount, 2)
  assert.equal(s.successCount, 3)
  // and the old failures cannot help trip it again
  await failN(b, 1)
  assert.equal(b.state, 'CLOSED')
})

test('a call admitted while CLOSED that settles after the trip cannot close or re-open it', async () => {
  const b = mk({ consecutiveFailures: 2, resetTimeout: 10_000 })
  const slow = deferred()
  const inflight = b.execute(() => slow.promise)
  await failN(b, 2)
  assert.equal(b.state, 'OPEN')
  slow.resolve('done')
  assert.equal(await inflight, 'done')
  assert.equal(b.state, 'OPEN')
})

test('a process with OPEN breakers has no timers: state is decided by the clock on read', async () => {
  // a Lambda frozen for longer than resetTimeout: nothing needs to have run in between
  const b = mk({ consecutiveFailures: 1, resetTimeout: 50 })
  await failN(b, 1)
  const t = Date.now()
  while (Date.now() - t < 70) { /* busy: no event loop turns */ }
  assert.equal(b.state, 'HALF_OPEN')
})

test('after resetTimeout, of many concurrent calls exactly halfOpenMaxRequests run as probes', async () => {
  const b = mk({ consecutiveFailures: 1, resetTimeout: 40, halfOpenMaxRequests: 3, successThreshold: 3 })
  await failN(b, 1)
  await sleep(60)
  let runs = 0
  const gate = deferred()
  const results = await Promise.allSettled(Array.from({ length: 20 }, () => b.execute(() => { runs++; return gate.promise })).concat([sleep(10).then(() => gate.resolve('ok'))]))
  assert.equal(runs, 3)
  assert.equal(results.slice(0, 20).filter((r) => r.status === 'fulfilled').length, 3)
  assert.ok(results.slice(0, 20).filter((r) => r.status === 'rejected').every((r) => r.reason instanceof CircuitBreakerOpenError))
  assert.equal(b.state, 'CLOSED')
})

test('a probe that times out re-opens the circuit', async () => {
  const b = mk({ consecutiveFailures: 1, resetTimeout: 10_000, timeout: 20 })
  const reasons = []
  b.on('stateChange', (e) => reasons.push(e.reason))
  await failN(b, 1)
  b.halfOpen()
  await assert.rejects(b.execute(() => sleep(200)), { name: 'CircuitBreakerTimeoutError' })
  assert.equal(b.state, 'OPEN')
  assert.equal(reasons.at(-1), 'probeFailed')
})

test('resetTimeout 0: an OPEN circuit lets the next call probe at once', async () => {
  const b = mk({ consecutiveFailures: 1, resetTimeout: 0 })
  await failN(b, 1)
  assert.equal(await b.execute(ok('probe')), 'probe')
  assert.equal(b.state, 'CLOSED')
})
