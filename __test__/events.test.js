'use strict'
// Events: on() returns unsubscribe; stateChange payload; per-call events; onStateChange; logger.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { CircuitBreaker, CircuitBreakerOpenError, CircuitBreakerTimeoutError } = require('..')
const { uniq, sleep, fail, ok, okN, failN, recordingLogger } = require('./helpers.js')

const mk = (extra = {}) => new CircuitBreaker({ name: uniq('events'), logger: null, timeout: 0, ...extra })

test('stateChange payload is { name, from, to, reason } for a full cycle', async () => {
  const b = mk({ consecutiveFailures: 2, resetTimeout: 40 })
  const ev = []
  b.on('stateChange', (e) => ev.push(e))
  await failN(b, 2)
  await sleep(60)
  await okN(b, 1)
  assert.deepEqual(ev.map(({ name, from, to, reason }) => ({ name, from, to, reason })), [
    { name: b.name, from: 'CLOSED', to: 'OPEN', reason: 'consecutiveFailures' },
    { name: b.name, from: 'OPEN', to: 'HALF_OPEN', reason: 'resetTimeout' },
    { name: b.name, from: 'HALF_OPEN', to: 'CLOSED', reason: 'probeSucceeded' },
  ])
  for (const e of ev) assert.ok(typeof e.at === 'number' && Math.abs(e.at - Date.now()) < 5_000)
})

test('stateChange reasons for each rule and control', async () => {
  const reasonOf = async (extra, drive) => {
    const b = mk(extra)
    const rs = []
    b.on('stateChange', (e) => rs.push(e.reason))
    await drive(b)
    return rs
  }
  assert.deepEqual(await reasonOf({ minimumRequests: 2, window: { type: 'count', size: 10 } }, (b) => failN(b, 2)), ['failureRate'])
  assert.deepEqual(await reasonOf({ minimumRequests: 2, slowCallDurationMs: 10, slowCallRateThreshold: 1 }, async (b) => {
    await b.execute(() => sleep(25)); await b.execute(() => sleep(25))
  }), ['slowCallRate'])
  assert.deepEqual(await reasonOf({ shouldTrip: (c) => c.failures > 0 }, (b) => failN(b, 1)), ['shouldTrip'])
  assert.deepEqual(await reasonOf({ resetTimeout: 10_000 }, async (b) => { b.halfOpen(); await failN(b, 1) }), ['manualHalfOpen', 'probeFailed'])
  assert.deepEqual(await reasonOf({}, async (b) => { b.open(); b.close(); b.open(100); b.reset() }), ['forcedOpen', 'manualClose', 'manualOpen', 'reset'])
  assert.deepEqual(await reasonOf({ halfOpenTimeout: 30 }, async (b) => { b.halfOpen(); await sleep(60); void b.state }), ['manualHalfOpen', 'halfOpenTimeout'])
})

test('open / halfOpen / close events fire with the same payload', async () => {
  const b = mk({ consecutiveFailures: 1, resetTimeout: 30 })
  const got = []
  b.on('open', (e) => got.push(['open', e.to]))
  b.on('halfOpen', (e) => got.push(['halfOpen', e.to]))
  b.on('close', (e) => got.push(['close', e.to]))
  await failN(b, 1)
  await sleep(50)
  assert.equal(b.state, 'HALF_OPEN')
  await okN(b, 1)
  assert.deepEqual(got, [['open', 'OPEN'], ['halfOpen', 'HALF_OPEN'], ['close', 'CLOSED']])
})

test('on() returns an unsubscribe function', async () => {
  const b = mk({ minimumRequests: 1000 })
  let n = 0
  const off = b.on('success', () => n++)
  await okN(b, 2)
  off()
  await okN(b, 2)
  assert.equal(n, 2)
  off() // idempotent
})

test('unsubscribing one listener leaves the others', async () => {
  const b = mk({ minimumRequests: 1000 })
  const a = []
  const c = []
  const offA = b.on('failure', () => a.push(1))
  b.on('failure', () => c.push(1))
  offA()
  await failN(b, 1)
  assert.equal(a.length, 0)
  assert.equal(c.length, 1)
})

test('per-call events: success, failure, reject, timeout, fallback', async () => {
  const b = mk({ timeout: 20, consecutiveFailures: 3, resetTimeout: 10_000, fallback: () => 'fb' })
  const ev = []
  for (const e of ['success', 'failure', 'reject', 'timeout', 'fallback']) b.on(e, (p) => ev.push([e, p]))
  await b.execute(ok())
  const err = new Error('f')
  await b.execute(() => Promise.reject(err))
  await b.execute(() => sleep(200))
  await b.execute(fail())
  ev.length = 0
  await b.execute(ok()) // rejected, fallback
  assert.deepEqual(ev.map((x) => x[0]), ['reject', 'fallback'])
  assert.ok(ev[0][1].error instanceof CircuitBreakerOpenError)
  assert.equal(ev[0][1].name, b.name)
})

test('per-call event payloads', async () => {
  const b = mk({ timeout: 20, minimumRequests: 1000, fallback: (e) => e.message })
  const ev = []
  for (const e of ['success', 'failure', 'timeout', 'fallback']) b.on(e, (p) => ev.push([e, p]))
  await b.execute(ok())
  const err = new Error('f')
  await b.execute(() => Promise.reject(err))
  await b.execute(() => sleep(200))
  assert.deepEqual(ev[0], ['success', { name: b.name }])
  assert.equal(ev[1][0], 'failure')
  assert.equal(ev[1][1].error, err)
  assert.equal(ev[1][1].timeout, false)
  assert.equal(ev[2][0], 'fallback')
  assert.equal(ev[2][1].error, err)
  const rest = ev.slice(3).map((x) => x[0])
  assert.deepEqual(rest, ['timeout', 'failure', 'fallback'])
  assert.equal(ev[3][1].timeoutMs, 20)
  assert.ok(ev[4][1].error instanceof CircuitBreakerTimeoutError)
  assert.equal(ev[4][1].timeout, true)
})

test('every success is reported while a success listener is attached', async () => {
  const b = mk({ minimumRequests: 100_000 })
  let n = 0
  b.on('success', () => n++)
  const ps = []
  for (let i = 0; i < 100; i++) ps.push(b.execute(() => i))
  await Promise.all(ps)
  assert.equal(n, 100)
})

test('on() rejects unknown events and non-function listeners', () => {
  const b = mk()
  assert.throws(() => b.on('opened', () => {}), (e) => e instanceof TypeError && /opened/.test(e.message))
  assert.throws(() => b.on('open', 'nope'), TypeError)
})

test('onStateChange option is called like a stateChange listener', async () => {
  const ev = []
  const b = mk({ consecutiveFailures: 1, resetTimeout: 10_000, onStateChange: (e) => ev.push(e) })
  await failN(b, 1)
  assert.equal(ev.length, 1)
  assert.equal(ev[0].name, b.name)
  assert.equal(ev[0].from, 'CLOSED')
  assert.equal(ev[0].to, 'OPEN')
  assert.equal(ev[0].reason, 'consecutiveFailures')
})

test('transitions reach every instance of the circuit in this thread', async () => {
  const name = uniq('events-shared')
  const o = { name, logger: null, timeout: 0, consecutiveFailures: 1, resetTimeout: 10_000 }
  const a = new CircuitBreaker(o)
  const b = new CircuitBreaker(o)
  const gotB = []
  b.on('stateChange', (e) => gotB.push(e.to))
  await failN(a, 1)
  assert.deepEqual(gotB, ['OPEN'])
})

test('a listener that throws does not break the call or other listeners', async () => {
  const logger = recordingLogger()
  const b = new CircuitBreaker({ name: uniq('events-throw'), logger, timeout: 0, consecutiveFailures: 1, resetTimeout: 10_000 })
  let later = 0
  b.on('stateChange', () => { throw new Error('listener bug') })
  b.on('success', () => { throw new Error('listener bug') })
  b.on('stateChange', () => later++)
  assert.equal(await b.execute(ok('v')), 'v')
  await assert.rejects(b.execute(fail('real')), /real/)
  assert.equal(later, 1)
  assert.equal(b.state, 'OPEN')
  assert.ok(logger.lines.some((l) => l.level === 'error' && /listener bug/.test(l.msg)), 'the throw is logged')
})

test('logger: one line per transition, OPEN at warn, others at info', async () => {
  const logger = recordingLogger()
  const b = new CircuitBreaker({ name: uniq('events-log'), logger, timeout: 0, consecutiveFailures: 1, resetTimeout: 30 })
  await failN(b, 1)
  await okN(b, 0)
  await sleep(50)
  await okN(b, 1)
  assert.equal(b.state, 'CLOSED')
  assert.equal(logger.lines.length, 3, JSON.stringify(logger.lines))
  assert.equal(logger.lines[0].level, 'warn')
  assert.match(logger.lines[0].msg, new RegExp(`${b.name}.*CLOSED.*OPEN`))
  assert.equal(logger.lines[1].level, 'info')
  assert.match(logger.lines[1].msg, /OPEN.*HALF_OPEN/)
  assert.equal(logger.lines[2].level, 'info')
  assert.match(logger.lines[2].msg, /HALF_OPEN.*CLOSED/)
})

test('logger: a transition is logged once even with several instances of the circuit', async () => {
  const logger = recordingLogger()
  const name = uniq('events-log-multi')
  const o = { name, logger, timeout: 0, consecutiveFailures: 1, resetTimeout: 10_000 }
  const a = new CircuitBreaker(o)
  const b = new CircuitBreaker(o)
  await failN(a, 1)
  void b.state
  b.getStats()
  assert.equal(logger.lines.length, 1, JSON.stringify(logger.lines))
})

test('logger: only log() is enough', async () => {
  const lines = []
  const b = new CircuitBreaker({ name: uniq('events-log-only'), logger: { log: (m) => lines.push(m) }, timeout: 0 })
  b.open()
  assert.equal(lines.length, 1)
})

test('logger: a logger that throws does not break the breaker', async () => {
  const thrower = { warn() { throw new Error('log broke') }, info() { throw new Error('log broke') } }
  const b = new CircuitBreaker({ name: uniq('events-log-throw'), logger: thrower, timeout: 0, consecutiveFailures: 1, resetTimeout: 10_000 })
  await assert.rejects(b.execute(fail('real')), /real/)
  assert.equal(b.state, 'OPEN')
})

test('logger: default is console; logger: null is silent', async () => {
  const orig = { warn: console.warn, info: console.info, log: console.log, error: console.error }
  const seen = []
  console.warn = (m) => seen.push(['warn', m])
  console.info = (m) => seen.push(['info', m])
  console.error = (m) => seen.push(['error', m])
  console.log = (m) => seen.push(['log', m])
  try {
    const a = new CircuitBreaker({ name: uniq('events-console'), timeout: 0 })
    a.open()
    a.close()
    assert.equal(seen.length, 2, JSON.stringify(seen))
    seen.length = 0
    const b = new CircuitBreaker({ name: uniq('events-null'), logger: null, timeout: 0 })
    b.open()
    b.close()
    assert.equal(seen.length, 0)
  } finally {
    Object.assign(console, orig)
  }
})
