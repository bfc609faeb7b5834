'use strict'
// Coming from opossum or cockatiel: the README's guide names every option, method and event of
// opossum 10 and cockatiel 4 (read from the installed packages themselves), their option names
// fail with a hint naming breakwater's equivalent, and the gotchas the guide warns about hold.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { CircuitBreaker } = require('..')
const { uniq } = require('./helpers.js')

const ROOT = path.join(__dirname, '..')
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')

/** The README's text between `### <title>` and the next heading. */
function section(title) {
  const start = README.indexOf(`### ${title}\n`)
  assert.ok(start >= 0, `README has no "### ${title}" section`)
  const end = README.slice(start + 4).search(/\n##/)
  return README.slice(start, end < 0 ? undefined : start + 4 + end)
}

/** Names in the left column of a migration table (inside backticks). */
function leftColumn(text) {
  const names = new Set()
  for (const line of text.split('\n')) {
    const cell = line.startsWith('| ') ? line.split(' | ')[0] : ''
    for (const m of cell.matchAll(/`([^`]+)`/g)) for (const w of m[1].match(/[A-Za-z_][\w]*/g) || []) names.add(w)
  }
  return names
}

test('the opossum 10 table names every option, method, getter and event of opossum', () => {
  assert.equal(require('opossum/package.json').version.split('.')[0], '10')
  const src = fs.readFileSync(require.resolve('opossum/lib/circuit.js'), 'utf8')
  const options = [...src.matchAll(/@param \{[^}]+\} options\.(\w+)/g)].map((m) => m[1])
  const members = [...src.matchAll(/^ {2}(?:static |get )?(\w+) \(/gm)].map((m) => m[1])
    .filter((n) => n !== 'constructor' && n !== 'if' && !n.startsWith('_'))
  const events = [...src.matchAll(/emit\('(\w+)'/g)].map((m) => m[1])
  const status = fs.readFileSync(require.resolve('opossum/lib/status.js'), 'utf8')
  events.push(...[...status.matchAll(/emit\('(\w+)'/g)].map((m) => m[1]))
  assert.ok(options.length >= 25 && members.length >= 20 && events.length >= 15, 'read opossum')
  const named = leftColumn(section('opossum 10'))
  const missing = [...new Set([...options, ...members, ...events])].filter((n) => !named.has(n))
  assert.deepEqual(missing, [], `not in the opossum table: ${missing.join(', ')}`)
})

test('the cockatiel 4 table names every export, option, member and event of cockatiel', () => {
  const cockatiel = require('cockatiel')
  const dist = path.dirname(require.resolve('cockatiel'))
  const read = (f) => fs.readFileSync(path.join(dist, f), 'utf8')
  // Exports, minus the internals a user does not write and the enums' reverse mappings.
  const internal = new Set(['Event', 'EventEmitter', 'MemoryEventEmitter', 'ExecuteWrapper', 'Policy', 'NoopPolicy',
    'CircuitBreakerPolicy', 'RetryPolicy', 'TimeoutPolicy', 'BulkheadPolicy', 'FallbackPolicy', 'isBrokenCircuitError',
    'isBulkheadRejectedError', 'isIsolatedCircuitError', 'isTaskCancelledError', 'isHydratingCircuitError', 'BulkheadRejectedError',
    'TimeoutStrategy', 'CircuitState'])
  const exports = Object.keys(cockatiel).filter((n) => !internal.has(n))
  const optionsBlock = read('CircuitBreakerPolicy.d.ts').match(/interface ICircuitBreakerOptions \{[\s\S]*?\n\}/)[0]
  const breakerOptions = [...optionsBlock.matchAll(/^ {4}(\w+)\??: /gm)].map((m) => m[1])
  assert.deepEqual(breakerOptions.sort(), ['breaker', 'halfOpenAfter', 'halfOpenSampling', 'initialState'])
  const members = [...read('CircuitBreakerPolicy.d.ts').matchAll(/^ {4}(?:readonly |get )?(\w+)[(:]/gm)].map((m) => m[1])
    .filter((n) => !['constructor', 'options', 'executor', 'breakEmitter', 'resetEmitter', 'halfOpenEmitter', 'stateChangeEmitter',
      'halfOpenAfterBackoffFactory', 'halfOpenSampling', 'innerLastFailure', 'innerState', '_altReturn', 'attempt', 'result',
      'breaker', 'halfOpenAfter', 'initialState', 'calls', 'threshold'].includes(n))
  const retryMembers = ['onRetry', 'onGiveUp', 'dangerouslyUnref', 'maxAttempts']
  const policyMethods = ['orType', 'orWhen', 'orWhenResult', 'orResultType']
  const states = ['Isolated']
  assert.ok(exports.length >= 20, `read cockatiel: ${exports.join(',')}`)
  const named = leftColumn(section('cockatiel 4'))
  const missing = [...new Set([...exports, ...breakerOptions, ...members, ...retryMembers, ...policyMethods, ...states])].filter((n) => !named.has(n))
  assert.deepEqual(missing, [], `not in the cockatiel table: ${missing.join(', ')}`)
})

test("opossum's and cockatiel's option names throw a TypeError naming breakwater's equivalent", () => {
  const cases = {
    errorThresholdPercentage: /failureThreshold/,
    volumeThreshold: /minimumRequests/,
    errorFilter: /isFailure, its inverse/,
    rollingCountBuckets: /window: \{ type: 'time', durationMs, buckets \}/,
    rollingCountTimeout: /window/,
    maxFailures: /consecutiveFailures/,
    allowWarmUp: /minimumRequests/,
    capacity: /no equivalent/,
    cache: /no equivalent/,
    coalesce: /no equivalent/,
    abortController: /AbortSignal/,
    halfOpenAfter: /resetTimeout/,
    breaker: /consecutiveFailures.*CountBreaker/,
    halfOpenSampling: /halfOpenMaxRequests and successThreshold/,
    rotateBucketController: /no timers/,
  }
  for (const [option, hint] of Object.entries(cases)) {
    assert.throws(() => new CircuitBreaker({ name: uniq('mig'), logger: null, [option]: 1 }), (e) => {
      assert.ok(e instanceof TypeError, option)
      assert.match(e.message, new RegExp(`unknown option ${option}; `))
      assert.match(e.message, hint)
      return true
    })
  }
  assert.throws(() => new CircuitBreaker({ name: uniq('mig'), timeout: false }), (e) => e instanceof TypeError && /timeout must be a number.*0 means none/.test(e.message))
})

test("an opossum-style fallback (...args, error) is refused; one taking the error works", async () => {
  assert.throws(() => new CircuitBreaker({ name: uniq('mig'), logger: null, fallback: (id, err) => ({ id, err }) }),
    (e) => e instanceof TypeError && /fallback is called with one argument, the error, got a function of 2 parameters/.test(e.message))
  const b = new CircuitBreaker({ name: uniq('mig'), logger: null, timeout: 0, fallback: (err) => `cached (${err.message})` })
  assert.equal(await b.execute(() => Promise.reject(new Error('down'))), 'cached (down)')
  // Defaults and rest parameters do not count in a function's length: those are allowed.
  assert.doesNotThrow(() => new CircuitBreaker({ name: uniq('mig'), logger: null, fallback: (err, extra = 1) => [err, extra] }))
})

test('the gotchas the guide warns about: object payloads, halfOpen is a method, no opened getter', async () => {
  const b = new CircuitBreaker({ name: uniq('mig'), logger: null, timeout: 0, consecutiveFailures: 1 })
  const messages = []
  b.on('failure', (ev) => messages.push(ev.message, ev.error.message))
  await b.execute(() => Promise.reject(new Error('down'))).catch(() => {})
  assert.deepEqual(messages, [undefined, 'down'])
  assert.equal(typeof b.halfOpen, 'function')
  assert.equal(b.opened, undefined)
  assert.equal(b.state, 'OPEN')
})
