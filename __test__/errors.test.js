'use strict'
// The error classes: real Error subclasses with name, circuit, state, retryAfterMs / timeoutMs.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { CircuitBreaker, CircuitBreakerOpenError, CircuitBreakerTimeoutError } = require('..')
const { uniq, sleep, fail, ok, failN } = require('./helpers.js')

const mk = (extra = {}) => new CircuitBreaker({ name: uniq('errors'), logger: null, timeout: 0, ...extra })

test('CircuitBreakerOpenError is a real Error subclass with the right name', () => {
  const e = new CircuitBreakerOpenError('svc', 'OPEN', 1234)
  assert.ok(e instanceof Error)
  assert.ok(e instanceof CircuitBreakerOpenError)
  assert.equal(e.name, 'CircuitBreakerOpenError')
  assert.equal(e.circuit, 'svc')
  assert.equal(e.state, 'OPEN')
  assert.equal(e.retryAfterMs, 1234)
  assert.match(e.message, /svc/)
  assert.equal(Object.prototype.toString.call(e), '[object Error]')
  assert.match(String(e), /^CircuitBreakerOpenError: /)
  assert.equal(typeof e.stack, 'string')
})

test('CircuitBreakerTimeoutError is a real Error subclass with the right name', () => {
  const e = new CircuitBreakerTimeoutError('svc', 500, 'CLOSED')
  assert.ok(e instanceof Error)
  assert.equal(e.name, 'CircuitBreakerTimeoutError')
  assert.equal(e.circuit, 'svc')
  assert.equal(e.timeoutMs, 500)
  assert.equal(e.state, 'CLOSED')
  assert.match(e.message, /500/)
  assert.match(String(e), /^CircuitBreakerTimeoutError: /)
  assert.ok(!(e instanceof CircuitBreakerOpenError))
})

test('a rejection from an OPEN circuit carries circuit, state and retryAfterMs', async () => {
  const b = mk({ consecutiveFailures: 1, resetTimeout: 5_000 })
  await failN(b, 1)
  const e = await b.execute(ok()).catch((x) => x)
  assert.ok(e instanceof CircuitBreakerOpenError)
  assert.equal(e.name, 'CircuitBreakerOpenError')
  assert.equal(e.circuit, b.name)
  assert.equal(e.state, 'OPEN')
  assert.equal(typeof e.retryAfterMs, 'number')
  assert.ok(e.retryAfterMs > 4_800 && e.retryAfterMs <= 5_000, `retryAfterMs ${e.retryAfterMs}`)
  assert.match(e.message, new RegExp(b.name))
})

test('retryAfterMs counts down', async () => {
  const b = mk({ consecutiveFailures: 1, resetTimeout: 300 })
  await failN(b, 1)
  const e1 = await b.execute(ok()).catch((x) => x)
  await sleep(100)
  const e2 = await b.execute(ok()).catch((x) => x)
  assert.ok(e2.retryAfterMs < e1.retryAfterMs - 50, `${e1.retryAfterMs} then ${e2.retryAfterMs}`)
  assert.ok(e2.retryAfterMs >= 0)
})

test('a rejection from a forced-open circuit has retryAfterMs null', async () => {
  const b = mk()
  b.open()
  const e = await b.execute(ok()).catch((x) => x)
  assert.ok(e instanceof CircuitBreakerOpenError)
  assert.equal(e.state, 'OPEN')
  assert.equal(e.retryAfterMs, null)
})

test('a rejection while HALF_OPEN (slots taken) has state HALF_OPEN and retryAfterMs 0', async () => {
  const b = mk()
  b.halfOpen()
  const probe = b.execute(() => sleep(30))
  const e = await b.execute(ok()).catch((x) => x)
  assert.ok(e instanceof CircuitBreakerOpenError)
  assert.equal(e.state, 'HALF_OPEN')
  assert.equal(e.retryAfterMs, 0)
  await probe
})

test('the open error is built without a stack trace: its stack is the message line, no frames of ours', async () => {
  const b = mk()
  b.open()
  const e = await (function callSiteMarker() { return b.execute(ok()) })().catch((x) => x)
  assert.equal(e.stack, `CircuitBreakerOpenError: ${e.message}`)
  assert.doesNotMatch(e.stack, /breaker\.js/)
  // and building it did not change the process-wide limit
  assert.equal(Error.stackTraceLimit, 10)
})

test('a timeout error carries circuit, state and timeoutMs', async () => {
  const b = mk({ timeout: 25 })
  const e = await b.execute(() => sleep(300)).catch((x) => x)
  assert.ok(e instanceof CircuitBreakerTimeoutError)
  assert.equal(e.circuit, b.name)
  assert.equal(e.timeoutMs, 25)
  assert.equal(e.state, 'CLOSED')
})

test('errors are JSON-friendly enough to log (own enumerable fields)', async () => {
  const b = mk({ consecutiveFailures: 1, resetTimeout: 5_000 })
  await b.execute(fail())
    .catch(() => {})
  const e = await b.execute(ok()).catch((x) => x)
  const j = JSON.parse(JSON.stringify(e))
  assert.equal(j.circuit, b.name)
  assert.equal(j.state, 'OPEN')
  assert.equal(typeof j.retryAfterMs, 'number')
})

test('a timeout error from a HALF_OPEN probe says HALF_OPEN', async () => {
  const b = mk({ timeout: 20, resetTimeout: 10_000 })
  b.halfOpen()
  const e = await b.execute(() => sleep(200)).catch((x) => x)
  assert.ok(e instanceof CircuitBreakerTimeoutError)
  assert.equal(e.state, 'HALF_OPEN')
  assert.equal(b.state, 'OPEN', 'the probe timing out re-opened the circuit')
})

test('a timeout error from a breaker attached to a HALF_OPEN circuit says HALF_OPEN', async () => {
  const name = uniq('errors-attached')
  const first = new CircuitBreaker({ name, logger: null, timeout: 20 })
  first.halfOpen()
  const second = new CircuitBreaker({ name, logger: null, timeout: 20 })
  const e = await second.execute(() => sleep(200)).catch((x) => x)
  assert.ok(e instanceof CircuitBreakerTimeoutError)
  assert.equal(e.state, 'HALF_OPEN')
})

test('a fallback of an OPEN circuit gets a CircuitBreakerOpenError whose retryAfterMs counts down', async () => {
  const seen = []
  const b = mk({ resetTimeout: 5_000, fallback: (err) => { seen.push(err); return 'fb' } })
  b.open(5_000)
  assert.equal(await b.execute(ok()), 'fb')
  await sleep(30)
  assert.equal(await b.execute(ok()), 'fb')
  const [e1, e2] = seen
  for (const e of [e1, e2]) {
    assert.ok(e instanceof CircuitBreakerOpenError)
    assert.equal(e.name, 'CircuitBreakerOpenError')
    assert.equal(e.circuit, b.name)
    assert.equal(e.state, 'OPEN')
    assert.match(e.message, /is OPEN/)
  }
  assert.ok(e2.retryAfterMs <= 5_000 - 25 && e2.retryAfterMs > 4_000, `retryAfterMs ${e2.retryAfterMs}`)
  // Serialised (a log line, a response body) it carries the figure of that moment: the getter
  // is read at each access, so it lies between a read before and one after.
  const before = e2.retryAfterMs
  const json = JSON.parse(JSON.stringify(e2)).retryAfterMs
  const after = e2.retryAfterMs
  assert.ok(Number.isInteger(json) && json <= before && json >= after, `${before} >= ${json} >= ${after}`)
  assert.equal(b.getStats().fallbackCount, 2)
})
