'use strict'
// Options: validation (TypeError/RangeError naming option and value), defaults, configure(),
// CIRCUIT_BREAKER_* environment variables, precedence.
const { test, afterEach } = require('node:test')
const assert = require('node:assert/strict')
const { CircuitBreaker, configure } = require('..')
const { resetConfiguration } = require('../lib/options.js')
const { uniq, failN } = require('./helpers.js')

const ENV = ['CIRCUIT_BREAKER_ENABLED', 'CIRCUIT_BREAKER_FAILURE_THRESHOLD', 'CIRCUIT_BREAKER_MINIMUM_REQUESTS',
  'CIRCUIT_BREAKER_TIMEOUT', 'CIRCUIT_BREAKER_RESET_TIMEOUT', 'CIRCUIT_BREAKER_HALF_OPEN_TIMEOUT']

afterEach(() => {
  resetConfiguration()
  for (const k of ENV) delete process.env[k]
})

const make = (extra) => new CircuitBreaker({ name: uniq('options'), logger: null, ...extra })

/** Asserts that `fn` throws `Cls` with a message containing every string in `parts`. */
function throwsNaming(fn, Cls, ...parts) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof Cls, `expected ${Cls.name}, got ${e && e.constructor.name}: ${e && e.message}`)
    for (const p of parts) assert.ok(e.message.includes(p), `message ${JSON.stringify(e.message)} should contain ${JSON.stringify(p)}`)
    return true
  })
}

test('name is required, a non-empty string', () => {
  throwsNaming(() => new CircuitBreaker({ logger: null }), TypeError, 'name')
  throwsNaming(() => new CircuitBreaker({ name: '', logger: null }), TypeError, 'name')
  throwsNaming(() => new CircuitBreaker({ name: 42, logger: null }), TypeError, 'name', '42')
  throwsNaming(() => new CircuitBreaker(), TypeError, 'options')
  throwsNaming(() => new CircuitBreaker(null), TypeError)
  throwsNaming(() => new CircuitBreaker('stripe'), TypeError)
})

const BAD = [
  ['failureThreshold', 0, RangeError, '0'],
  ['failureThreshold', -0.5, RangeError, '-0.5'],
  ['failureThreshold', 'half', TypeError, '"half"'],
  ['failureThreshold', NaN, TypeError, 'NaN'],
  ['failureThreshold', Infinity, RangeError, 'Infinity'],
  ['minimumRequests', 0, RangeError, '0'],
  ['minimumRequests', 2.5, RangeError, '2.5'],
  ['minimumRequests', '10', TypeError, '"10"'],
  ['consecutiveFailures', -1, RangeError, '-1'],
  ['consecutiveFailures', 1.5, RangeError, '1.5'],
  ['slowCallDurationMs', -5, RangeError, '-5'],
  ['slowCallRateThreshold', 1.5, RangeError, '1.5'],
  ['slowCallRateThreshold', -0.1, RangeError, '-0.1'],
  ['timeout', -1, RangeError, '-1'],
  ['timeout', '30s', TypeError, '"30s"'],
  ['timeout', 2 ** 31, RangeError, String(2 ** 31)],
  ['timeout', null, TypeError, 'null'],
  ['resetTimeout', -100, RangeError, '-100'],
  ['resetTimeout', {}, TypeError, 'object'],
  ['halfOpenMaxRequests', 0, RangeError, '0'],
  ['halfOpenMaxRequests', 1.2, RangeError, '1.2'],
  ['successThreshold', 0, RangeError, '0'],
  ['halfOpenTimeout', -1, RangeError, '-1'],
  ['enabled', 'yes', TypeError, '"yes"'],
  ['enabled', 1, TypeError, '1'],
  ['fallback', 'cached', TypeError, '"cached"'],
  ['isFailure', true, TypeError, 'true'],
  ['shouldTrip', 1, TypeError, '1'],
  ['onStateChange', {}, TypeError, 'object'],
  ['logger', 'console', TypeError, '"console"'],
  ['logger', {}, TypeError, 'object'],
]

for (const [option, value, Cls, shown] of BAD) {
  test(`bad option ${option} = ${typeof value === 'string' ? JSON.stringify(value) : String(value)} throws ${Cls.name} naming it`, () => {
    throwsNaming(() => make({ [option]: value }), Cls, option, shown)
  })
}

test('failureThreshold above 1 is a RangeError that points to consecutiveFailures', () => {
  throwsNaming(() => make({ failureThreshold: 50 }), RangeError, 'failureThreshold', '50', 'consecutiveFailures')
  throwsNaming(() => make({ failureThreshold: 1.01 }), RangeError, 'failureThreshold', 'consecutiveFailures')
})

test('failureThreshold 1 and tiny fractions are accepted', () => {
  assert.equal(make({ failureThreshold: 1 }).getStats().failureThreshold, 1)
  assert.equal(make({ failureThreshold: 0.001 }).getStats().failureThreshold, 0.001)
})

test('bad windows throw naming the window field', () => {
  throwsNaming(() => make({ window: 'time' }), TypeError, 'window', '"time"')
  throwsNaming(() => make({ window: null }), TypeError, 'window')
  throwsNaming(() => make({ window: { type: 'sliding' } }), TypeError, 'window.type', '"sliding"')
  throwsNaming(() => make({ window: { type: 'count' } }), TypeError, 'window.size')
  throwsNaming(() => make({ window: { type: 'count', size: 0 } }), RangeError, 'window.size', '0')
  throwsNaming(() => make({ window: { type: 'count', size: 2.5 } }), RangeError, 'window.size', '2.5')
  throwsNaming(() => make({ window: { type: 'count', size: 1e9 } }), RangeError, 'window.size')
  throwsNaming(() => make({ window: { type: 'time', durationMs: 0 } }), RangeError, 'window.durationMs', '0')
  throwsNaming(() => make({ window: { type: 'time', durationMs: 1000, buckets: 0 } }), RangeError, 'window.buckets', '0')
  throwsNaming(() => make({ window: { type: 'time', durationMs: 1000, buckets: 1.5 } }), RangeError, 'window.buckets', '1.5')
  throwsNaming(() => make({ window: { type: 'time', durationMs: 5, buckets: 10 } }), RangeError, 'window.durationMs')
})

test('slowCallRateThreshold without slowCallDurationMs is a RangeError naming both', () => {
  throwsNaming(() => make({ slowCallRateThreshold: 0.5 }), RangeError, 'slowCallRateThreshold', 'slowCallDurationMs')
})

test('unknown options throw, with a hint for opossum names', () => {
  throwsNaming(() => make({ failureTreshold: 0.5 }), TypeError, 'failureTreshold')
  throwsNaming(() => make({ errorThresholdPercentage: 50 }), TypeError, 'errorThresholdPercentage', 'failureThreshold')
  throwsNaming(() => make({ volumeThreshold: 5 }), TypeError, 'volumeThreshold', 'minimumRequests')
})

test('options set to undefined use the default', () => {
  const s = make({ timeout: undefined, failureThreshold: undefined }).getStats()
  assert.equal(s.timeout, 30_000)
  assert.equal(s.failureThreshold, 0.5)
})

test('defaults: 0.5, 10, 30 s timeout, 60 s reset, enabled', async () => {
  const b = make({})
  const s = b.getStats()
  assert.equal(s.failureThreshold, 0.5)
  assert.equal(s.minimumRequests, 10)
  assert.equal(s.timeout, 30_000)
  assert.equal(s.resetTimeout, 60_000)
  assert.equal(s.enabled, true)
  // halfOpenMaxRequests 1 and successThreshold 1 by default
  b.halfOpen()
  let release
  const probe = b.execute(() => new Promise((r) => { release = r }))
  await assert.rejects(b.execute(() => 1), { name: 'CircuitBreakerOpenError' })
  release()
  await probe
  assert.equal(b.state, 'CLOSED', 'one success closes')
})

test('configure() sets defaults for breakers created afterwards', () => {
  const before = make({})
  configure({ failureThreshold: 0.25, minimumRequests: 3, timeout: 500, resetTimeout: 700 })
  const after = make({}).getStats()
  assert.equal(after.failureThreshold, 0.25)
  assert.equal(after.minimumRequests, 3)
  assert.equal(after.timeout, 500)
  assert.equal(after.resetTimeout, 700)
  assert.equal(before.getStats().failureThreshold, 0.5, 'existing breakers keep theirs')
})

test('configure() accumulates; undefined removes a default', () => {
  configure({ timeout: 500 })
  configure({ resetTimeout: 700 })
  let s = make({}).getStats()
  assert.equal(s.timeout, 500)
  assert.equal(s.resetTimeout, 700)
  configure({ timeout: undefined })
  s = make({}).getStats()
  assert.equal(s.timeout, 30_000)
  assert.equal(s.resetTimeout, 700)
})

test('configure() enabled:false and logger defaults apply', async () => {
  const lines = []
  configure({ enabled: false, logger: { warn: (m) => lines.push(m), info: (m) => lines.push(m) } })
  const b = new CircuitBreaker({ name: uniq('options-cfg') })
  assert.equal(b.enabled, false)
  b.open()
  assert.equal(await b.execute(() => 'through'), 'through')
  assert.equal(lines.length, 1)
})

test('configure() validates like options', () => {
  throwsNaming(() => configure({ failureThreshold: 2 }), RangeError, 'failureThreshold')
  throwsNaming(() => configure({ timeout: 'x' }), TypeError, 'timeout')
  throwsNaming(() => configure({ name: 'x' }), TypeError, 'name')
  throwsNaming(() => configure({ fallback: () => 1 }), TypeError, 'fallback')
  throwsNaming(() => configure(null), TypeError)
  // a failed configure() changes nothing
  configure({ timeout: 123 })
  assert.throws(() => configure({ resetTimeout: 5, timeout: -1 }))
  const s = make({}).getStats()
  assert.equal(s.timeout, 123)
  assert.equal(s.resetTimeout, 60_000)
})

test('environment variables set defaults', () => {
  process.env.CIRCUIT_BREAKER_FAILURE_THRESHOLD = '0.2'
  process.env.CIRCUIT_BREAKER_MINIMUM_REQUESTS = '4'
  process.env.CIRCUIT_BREAKER_TIMEOUT = '1500'
  process.env.CIRCUIT_BREAKER_RESET_TIMEOUT = ' 2500 '
  process.env.CIRCUIT_BREAKER_ENABLED = 'false'
  const b = make({})
  const s = b.getStats()
  assert.equal(s.failureThreshold, 0.2)
  assert.equal(s.minimumRequests, 4)
  assert.equal(s.timeout, 1500)
  assert.equal(s.resetTimeout, 2500)
  assert.equal(b.enabled, false)
})

test('CIRCUIT_BREAKER_HALF_OPEN_TIMEOUT sets halfOpenTimeout', async () => {
  process.env.CIRCUIT_BREAKER_HALF_OPEN_TIMEOUT = '40'
  const b = make({ resetTimeout: 10_000 })
  b.halfOpen()
  await new Promise((r) => setTimeout(r, 70))
  assert.equal(b.state, 'OPEN')
})

test('CIRCUIT_BREAKER_ENABLED accepts true/false/1/0 in any case', () => {
  for (const [v, want] of [['TRUE', true], ['0', false], ['1', true], ['False', false]]) {
    process.env.CIRCUIT_BREAKER_ENABLED = v
    assert.equal(make({}).enabled, want, v)
  }
})

test('an empty environment variable is ignored', () => {
  process.env.CIRCUIT_BREAKER_TIMEOUT = ''
  assert.equal(make({}).getStats().timeout, 30_000)
})

const BAD_ENV = [
  ['CIRCUIT_BREAKER_ENABLED', 'maybe'],
  ['CIRCUIT_BREAKER_FAILURE_THRESHOLD', '50'],
  ['CIRCUIT_BREAKER_FAILURE_THRESHOLD', 'half'],
  ['CIRCUIT_BREAKER_FAILURE_THRESHOLD', '0'],
  ['CIRCUIT_BREAKER_MINIMUM_REQUESTS', '2.5'],
  ['CIRCUIT_BREAKER_MINIMUM_REQUESTS', 'ten'],
  ['CIRCUIT_BREAKER_TIMEOUT', '30s'],
  ['CIRCUIT_BREAKER_TIMEOUT', '-1'],
  ['CIRCUIT_BREAKER_TIMEOUT', '0x10'],
  ['CIRCUIT_BREAKER_RESET_TIMEOUT', '1e99'],
  ['CIRCUIT_BREAKER_HALF_OPEN_TIMEOUT', 'NaN'],
]
for (const [variable, value] of BAD_ENV) {
  test(`malformed ${variable}=${JSON.stringify(value)} throws naming the variable`, () => {
    process.env[variable] = value
    assert.throws(() => make({}), (e) => {
      assert.ok(e instanceof TypeError || e instanceof RangeError, e.constructor.name)
      assert.ok(e.message.includes(variable), e.message)
      assert.ok(e.message.includes(value), e.message)
      return true
    })
  })
}

test('precedence: explicit option > configure() > environment > default', () => {
  process.env.CIRCUIT_BREAKER_TIMEOUT = '1000'
  process.env.CIRCUIT_BREAKER_RESET_TIMEOUT = '1000'
  process.env.CIRCUIT_BREAKER_MINIMUM_REQUESTS = '7'
  configure({ timeout: 2000, resetTimeout: 2000 })
  const s = make({ timeout: 3000 }).getStats()
  assert.equal(s.timeout, 3000, 'explicit wins')
  assert.equal(s.resetTimeout, 2000, 'configure() beats env')
  assert.equal(s.minimumRequests, 7, 'env beats default')
  assert.equal(s.failureThreshold, 0.5, 'default')
})

test('explicit enabled:true wins over CIRCUIT_BREAKER_ENABLED=false', async () => {
  process.env.CIRCUIT_BREAKER_ENABLED = 'false'
  const b = make({ enabled: true, consecutiveFailures: 1, resetTimeout: 10_000 })
  assert.equal(b.enabled, true)
  await failN(b, 1)
  assert.equal(b.state, 'OPEN')
  await assert.rejects(b.execute(() => 1), { name: 'CircuitBreakerOpenError' })
})

test('an enumerable getter on the options object is read as the option', () => {
  const o = { name: uniq('options-getter'), logger: null }
  Object.defineProperty(o, 'minimumRequests', { get: () => 3, enumerable: true })
  assert.equal(new CircuitBreaker(o).getStats().minimumRequests, 3)
})
