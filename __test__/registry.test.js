'use strict'
// The process-wide registry: one circuit per name, getCircuitBreaker, getAllCircuitBreakerStats,
// resetAllCircuitBreakers, getHealthSummary, dispose, createExternalServiceCircuitBreaker.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const {
  CircuitBreaker, getAllCircuitBreakerStats, getCircuitBreaker, resetAllCircuitBreakers,
  getHealthSummary, createExternalServiceCircuitBreaker,
} = require('..')
const { uniq, sleep, ok, okN, failN } = require('./helpers.js')

const opts = (name, extra = {}) => ({ name, logger: null, timeout: 0, consecutiveFailures: 2, resetTimeout: 10_000, ...extra })

test('same name + same options attaches to the same circuit (counts and state)', async () => {
  const name = uniq('reg-same')
  const a = new CircuitBreaker(opts(name))
  const b = new CircuitBreaker(opts(name))
  assert.notEqual(a, b)
  await okN(a, 3)
  await okN(b, 2)
  assert.equal(a.getStats().successCount, 5)
  assert.equal(b.getStats().successCount, 5)
  await failN(a, 1)
  await failN(b, 1) // the second consecutive failure of the circuit
  assert.equal(a.state, 'OPEN')
  assert.equal(b.state, 'OPEN')
  await assert.rejects(a.execute(ok()))
})

test('functions belong to the instance: each instance keeps its own fallback', async () => {
  const name = uniq('reg-fns')
  const a = new CircuitBreaker(opts(name, { fallback: () => 'A' }))
  const b = new CircuitBreaker(opts(name, { fallback: () => 'B' }))
  a.open()
  assert.equal(await a.execute(ok()), 'A')
  assert.equal(await b.execute(ok()), 'B')
})

test('same name with different options throws, naming the option', () => {
  const name = uniq('reg-conflict')
  new CircuitBreaker(opts(name, { failureThreshold: 0.5 }))
  assert.throws(() => new CircuitBreaker(opts(name, { failureThreshold: 0.3 })), (e) => {
    assert.match(e.message, /failureThreshold/)
    assert.equal(e.code, 'BREAKWATER_OPTIONS_CONFLICT')
    return true
  })
  assert.throws(() => new CircuitBreaker(opts(name, { resetTimeout: 1 })), /resetTimeout/)
  assert.throws(() => new CircuitBreaker(opts(name, { window: { type: 'count', size: 5 } })), /window/)
  // the failed constructions left the circuit intact
  assert.equal(getCircuitBreaker(name).getStats().failureThreshold, 0.5)
})

test('a window conflict message uses the JS option names, not Rust debug notation', () => {
  const name = uniq('reg-conflict-window')
  new CircuitBreaker({ name, logger: null, window: { type: 'count', size: 5 } })
  assert.throws(() => new CircuitBreaker({ name, logger: null, window: { type: 'time', durationMs: 60_000, buckets: 10 } }), (e) => {
    assert.match(e.message, /window/)
    assert.doesNotMatch(e.message, /duration_ms|Count \{|Time \{/)
    return true
  })
})

test('a conflict with a default also counts (omitted option vs explicit value)', () => {
  const name = uniq('reg-conflict-default')
  new CircuitBreaker({ name, logger: null })
  assert.throws(() => new CircuitBreaker({ name, logger: null, minimumRequests: 3 }), /minimumRequests/)
})

test('getCircuitBreaker(name) returns the breaker, undefined for unknown names', () => {
  const name = uniq('reg-get')
  const a = new CircuitBreaker(opts(name))
  assert.equal(getCircuitBreaker(name), a)
  assert.equal(getCircuitBreaker(uniq('reg-nope')), undefined)
  assert.throws(() => getCircuitBreaker(42), TypeError)
})

test('getAllCircuitBreakerStats returns every circuit by name, with stats', async () => {
  const n1 = uniq('reg-all1')
  const n2 = uniq('reg-all2')
  const a = new CircuitBreaker(opts(n1))
  const b = new CircuitBreaker(opts(n2))
  await okN(a, 2)
  await failN(b, 2)
  const all = getAllCircuitBreakerStats()
  assert.equal(Object.getPrototypeOf(all), Object.prototype)
  assert.equal(all[n1].name, n1)
  assert.equal(all[n1].successCount, 2)
  assert.equal(all[n1].state, 'CLOSED')
  assert.equal(all[n2].failureCount, 2)
  assert.equal(all[n2].state, 'OPEN')
  assert.deepEqual(all[n1], { ...a.getStats(), stateChangedAt: all[n1].stateChangedAt, lastSuccessAt: all[n1].lastSuccessAt })
  assert.deepEqual(JSON.parse(JSON.stringify(all[n2])), all[n2])
})

test('getAllCircuitBreakerStats reports enabled:false for pass-through breakers', () => {
  const name = uniq('reg-all-disabled')
  new CircuitBreaker(opts(name, { enabled: false }))
  assert.equal(getAllCircuitBreakerStats()[name].enabled, false)
})

test('resetAllCircuitBreakers: every circuit CLOSED, empty window, zeroed counters, still registered', async () => {
  const n1 = uniq('reg-reset1')
  const n2 = uniq('reg-reset2')
  const a = new CircuitBreaker(opts(n1))
  const b = new CircuitBreaker(opts(n2))
  await okN(a, 3)
  await failN(b, 2)
  b.open()
  assert.equal(b.state, 'OPEN')
  resetAllCircuitBreakers()
  for (const x of [a, b]) {
    const s = x.getStats()
    assert.equal(s.state, 'CLOSED')
    assert.equal(s.totalRequests, 0)
    assert.equal(s.successCount, 0)
    assert.equal(s.failureCount, 0)
    assert.equal(s.window.calls, 0)
    assert.equal(s.consecutiveFailures, 0)
    assert.equal(s.lastFailureAt, null)
  }
  assert.equal(getCircuitBreaker(n1), a)
  assert.ok(n2 in getAllCircuitBreakerStats())
  // and they work afterwards
  assert.equal(await b.execute(ok('back')), 'back')
})

test('getHealthSummary counts circuits by state', async () => {
  resetAllCircuitBreakers()
  const base = getHealthSummary()
  assert.equal(base.open, 0)
  assert.equal(base.halfOpen, 0)
  assert.equal(base.health, 'healthy')
  assert.equal(base.closed, base.total)
  const a = new CircuitBreaker(opts(uniq('reg-health-a')))
  const b = new CircuitBreaker(opts(uniq('reg-health-b')))
  new CircuitBreaker(opts(uniq('reg-health-c')))
  a.open()
  b.halfOpen()
  const h = getHealthSummary()
  assert.deepEqual(h, { total: base.total + 3, closed: base.closed + 1, open: 1, halfOpen: 1, health: 'degraded' })
  a.close()
  b.close()
  assert.equal(getHealthSummary().health, 'healthy')
})

test('getHealthSummary sees an OPEN circuit whose resetTimeout passed as HALF_OPEN', async () => {
  resetAllCircuitBreakers()
  const a = new CircuitBreaker(opts(uniq('reg-health-lazy'), { consecutiveFailures: 1, resetTimeout: 40 }))
  await failN(a, 1)
  await sleep(70)
  const h = getHealthSummary()
  assert.equal(h.open, 0)
  assert.equal(h.halfOpen, 1)
  a.reset()
})

test('dispose removes the circuit from the registry; the name can be reused with other options', async () => {
  const name = uniq('reg-dispose')
  const a = new CircuitBreaker(opts(name))
  const twin = new CircuitBreaker(opts(name))
  await okN(a, 2)
  a.dispose()
  assert.equal(getCircuitBreaker(name), undefined)
  assert.ok(!(name in getAllCircuitBreakerStats()))
  await assert.rejects(a.execute(ok()), (e) => e.code === 'BREAKWATER_DISPOSED')
  await assert.rejects(twin.execute(ok()), (e) => e.code === 'BREAKWATER_DISPOSED', 'every instance of the circuit')
  const c = new CircuitBreaker(opts(name, { consecutiveFailures: 5 }))
  assert.equal(c.getStats().successCount, 0, 'a fresh circuit')
  assert.equal(await c.execute(ok('new')), 'new')
  a.dispose() // idempotent
  assert.equal(getCircuitBreaker(name), c)
})

test('dispose is reflected in getHealthSummary.total', () => {
  const before = getHealthSummary().total
  const a = new CircuitBreaker(opts(uniq('reg-dispose-total')))
  assert.equal(getHealthSummary().total, before + 1)
  a.dispose()
  assert.equal(getHealthSummary().total, before)
})

test('createExternalServiceCircuitBreaker: the preset (50%, 10 requests, 30 s timeout, 60 s reset)', async () => {
  const b = createExternalServiceCircuitBreaker(uniq('reg-preset'), undefined, { logger: null })
  assert.ok(b instanceof CircuitBreaker)
  const s = b.getStats()
  assert.equal(s.failureThreshold, 0.5)
  assert.equal(s.minimumRequests, 10)
  assert.equal(s.timeout, 30_000)
  assert.equal(s.resetTimeout, 60_000)
  await failN(b, 9)
  assert.equal(b.state, 'CLOSED')
  await failN(b, 1)
  assert.equal(b.state, 'OPEN')
})

test('createExternalServiceCircuitBreaker: fallback and overrides', async () => {
  const name = uniq('reg-preset-fb')
  const b = createExternalServiceCircuitBreaker(name, () => 'fb', { logger: null, timeout: 20, minimumRequests: 2 })
  assert.equal(b.name, name)
  assert.equal(b.getStats().timeout, 20)
  assert.equal(await b.execute(() => sleep(200)), 'fb')
  assert.throws(() => createExternalServiceCircuitBreaker(uniq('reg-preset-bad'), 'nope'), TypeError)
  assert.throws(() => createExternalServiceCircuitBreaker(''), TypeError)
})

test('instances created per invocation and dropped are garbage-collected (no growth per instance)', () => {
  const { execFileSync } = require('node:child_process')
  const path = require('node:path')
  const out = execFileSync(process.execPath, ['--expose-gc', path.join(__dirname, 'fixtures', 'attach-churn.js'), '10000'], { encoding: 'utf8', timeout: 30_000 })
  const r = JSON.parse(out)
  assert.equal(r.successCount, 20_000, 'all instances counted into the one circuit')
  assert.ok(r.growthPerInstance < 50, `heap grows by ${r.growthPerInstance.toFixed(0)} bytes per dropped instance`)
})

test('the cost of a failure does not grow with the number of instances ever created for the name', async () => {
  const name = uniq('reg-lanes')
  const o = { name, logger: null, timeout: 0, minimumRequests: 1_000_000_000 }
  const cost = async () => {
    const b = new CircuitBreaker(o)
    const t = performance.now()
    for (let i = 0; i < 500; i++) await b.execute(() => Promise.reject(new Error('x'))).catch(() => {})
    return performance.now() - t
  }
  await cost()
  const base = await cost()
  for (let i = 0; i < 10_000; i++) new CircuitBreaker(o) // eslint-disable-line no-new
  const after = await cost()
  assert.ok(after < base * 3 + 20, `500 failures took ${base.toFixed(1)} ms, then ${after.toFixed(1)} ms with 10,000 dropped instances`)
})
