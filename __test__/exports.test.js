'use strict'
// The public surface named by the contract (PRODUCT.md), from the CJS entry.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const bw = require('..')
const { CircuitBreaker } = bw
const { uniq } = require('./helpers.js')

test('the entry exports the classes and functions of the contract', () => {
  for (const k of ['CircuitBreaker', 'CircuitBreakerOpenError', 'CircuitBreakerTimeoutError']) assert.equal(typeof bw[k], 'function', k)
  for (const k of ['createExternalServiceCircuitBreaker', 'getAllCircuitBreakerStats', 'getCircuitBreaker', 'resetAllCircuitBreakers', 'getHealthSummary', 'configure']) {
    assert.equal(typeof bw[k], 'function', k)
  }
  assert.equal(typeof bw.CircuitState, 'object')
})

test('the metrics functions of the contract are exported', () => {
  for (const k of ['toPrometheus', 'toCloudWatchMetricData', 'emitEmf']) assert.equal(typeof bw[k], 'function', k)
})

test('breaker.toJSON() returns a small JSON-serialisable snapshot with the state', () => {
  const b = new CircuitBreaker({ name: uniq('exports-json'), logger: null })
  b.open()
  assert.equal(typeof b.toJSON, 'function')
  const snap = JSON.parse(JSON.stringify(b))
  assert.equal(snap.state, 'OPEN')
  assert.ok(JSON.stringify(b).length < 4_000)
})

test('a store without load/save is a TypeError naming the missing method, not ignored', () => {
  assert.throws(() => new CircuitBreaker({ name: uniq('exports-store'), logger: null, store: {} }), (e) => e instanceof TypeError && /store\.load/.test(e.message))
  assert.throws(() => new CircuitBreaker({ name: uniq('exports-store'), logger: null, store: { load() {} } }), (e) => e instanceof TypeError && /store\.save/.test(e.message))
  assert.throws(() => new CircuitBreaker({ name: uniq('exports-store'), logger: null, store: { load() {}, save() {}, syncIntervalMs: -5 } }), (e) => e instanceof RangeError && /store\.syncIntervalMs/.test(e.message))
})

test('initialState restores a toJSON() snapshot into a new circuit, and a malformed one is a TypeError', () => {
  const a = new CircuitBreaker({ name: uniq('exports-init-a'), logger: null, resetTimeout: 60_000 })
  a.open(30_000)
  const snap = JSON.parse(JSON.stringify(a))
  const b = new CircuitBreaker({ name: uniq('exports-init-b'), logger: null, initialState: snap })
  assert.equal(b.state, 'OPEN')
  const s = b.getStats()
  assert.equal(s.nextAttemptAt, snap.nextAttemptAt)
  assert.ok(s.retryAfterMs > 25_000 && s.retryAfterMs <= 30_000)
  // a snapshot never overrides a circuit that already exists: the live state knows better
  const c = new CircuitBreaker({ name: uniq('exports-init-c'), logger: null })
  const c2 = new CircuitBreaker({ name: c.name, logger: null, initialState: { state: 'OPEN' } })
  assert.equal(c2.state, 'CLOSED')
  assert.throws(() => new CircuitBreaker({ name: uniq('exports-init-d'), logger: null, initialState: { state: 'BROKEN' } }), (e) => e instanceof TypeError && /initialState\.state/.test(e.message))
})

test('a breaker exposes name, state, enabled and the documented methods', () => {
  const b = new CircuitBreaker({ name: uniq('exports-shape'), logger: null })
  for (const m of ['execute', 'wrap', 'getStats', 'open', 'close', 'halfOpen', 'reset', 'on', 'dispose']) assert.equal(typeof b[m], 'function', m)
  assert.equal(typeof b.name, 'string')
  assert.equal(b.state, 'CLOSED')
  assert.equal(b.enabled, true)
})
