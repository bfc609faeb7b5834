'use strict'
// registerOpenTelemetry against the real OpenTelemetry metrics SDK: a MeterProvider made
// global through @opentelemetry/api, a Meter taken from the API as a user does, and the
// SDK's in-memory exporter behind a periodic reader flushed on demand.
const { test, after } = require('node:test')
const assert = require('node:assert/strict')
const api = require('@opentelemetry/api')
const { MeterProvider, PeriodicExportingMetricReader, InMemoryMetricExporter, AggregationTemporality, DataPointType } = require('@opentelemetry/sdk-metrics')
const { CircuitBreaker, registerOpenTelemetry } = require('../index.js')
const { uniq, failN, okN } = require('./helpers.js')

// Cumulative (what Prometheus-style backends read) for the values. The SDK keeps exporting a
// cumulative series it saw once, even when no callback observes it any more; a delta reader
// shows what the callbacks observed in one collection.
const readers = {}
for (const temporality of ['CUMULATIVE', 'DELTA']) {
  const exporter = new InMemoryMetricExporter(AggregationTemporality[temporality])
  readers[temporality] = { exporter, reader: new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 }) }
}
const provider = new MeterProvider({ readers: Object.values(readers).map((r) => r.reader) })
api.metrics.setGlobalMeterProvider(provider)
after(() => provider.shutdown())

/** Flushes one collection; returns { metricName: { descriptor, dataPointType, points: [{ attributes, value }] } }. */
async function collect(temporality = 'CUMULATIVE') {
  // both readers every time: the SDK hands a reader every observation made since its last collection
  for (const r of Object.values(readers)) {
    r.exporter.reset()
    await r.reader.forceFlush()
  }
  const { exporter } = readers[temporality]
  const out = {}
  for (const rm of exporter.getMetrics()) {
    for (const sm of rm.scopeMetrics) {
      for (const m of sm.metrics) out[m.descriptor.name] = { descriptor: m.descriptor, dataPointType: m.dataPointType, isMonotonic: m.isMonotonic, points: m.dataPoints }
    }
  }
  return out
}
const pointsOf = (metric, name) => (metric ? metric.points.filter((p) => p.attributes.name === name) : [])

test('state, calls by result and failure rate per circuit, with attribute name; calls sum to totalRequests', async () => {
  const unregister = registerOpenTelemetry(api.metrics.getMeter('checkout'))
  try {
    const name = uniq('otel')
    class Declined extends Error {}
    const b = new CircuitBreaker({ name, logger: null, minimumRequests: 6, failureThreshold: 0.5, isFailure: (e) => !(e instanceof Declined) })
    await okN(b, 3)
    await b.execute(() => Promise.reject(new Declined('card declined'))).catch(() => {})
    let m = await collect()
    assert.deepEqual(pointsOf(m['circuit_breaker.state'], name).map((p) => p.value), [0])
    assert.deepEqual(pointsOf(m['circuit_breaker.failure_rate'], name).map((p) => p.value), [0])

    await failN(b, 3) // 3 of 6: opens
    await b.execute(() => 1).catch(() => {}) // rejected
    assert.equal(b.state, 'OPEN')
    m = await collect()
    const stats = b.getStats()
    assert.equal(m['circuit_breaker.state'].dataPointType, DataPointType.GAUGE)
    assert.equal(m['circuit_breaker.failure_rate'].dataPointType, DataPointType.GAUGE)
    assert.equal(m['circuit_breaker.calls'].dataPointType, DataPointType.SUM)
    assert.equal(m['circuit_breaker.calls'].isMonotonic, true)
    assert.equal(m['circuit_breaker.failure_rate'].descriptor.unit, '1')

    assert.deepEqual(pointsOf(m['circuit_breaker.state'], name).map((p) => [p.attributes, p.value]), [[{ name }, 2]])
    assert.deepEqual(pointsOf(m['circuit_breaker.failure_rate'], name).map((p) => p.value), [0.5])
    const calls = Object.fromEntries(pointsOf(m['circuit_breaker.calls'], name).map((p) => [p.attributes.result, p.value]))
    assert.deepEqual(calls, { success: 3, failure: 3, rejected: 1, ignored: 1 })
    assert.equal(calls.success + calls.failure + calls.rejected + calls.ignored, stats.totalRequests)
    for (const p of pointsOf(m['circuit_breaker.calls'], name)) assert.deepEqual(Object.keys(p.attributes).sort(), ['name', 'result'])

    b.halfOpen()
    m = await collect()
    assert.deepEqual(pointsOf(m['circuit_breaker.state'], name).map((p) => p.value), [1])

    const other = new CircuitBreaker({ name: uniq('otel-other'), logger: null })
    b.dispose() // a disposed circuit is no longer observed
    m = await collect('DELTA')
    assert.equal(pointsOf(m['circuit_breaker.state'], other.name).length, 1, 'other circuits still are')
    other.dispose()
    assert.deepEqual(pointsOf(m['circuit_breaker.state'], name), [])
    assert.deepEqual(pointsOf(m['circuit_breaker.calls'], name), [])
  } finally {
    unregister()
  }
})

test('the returned function unregisters: nothing is reported afterwards; calling it twice is harmless', async () => {
  const name = uniq('otel-unreg')
  const b = new CircuitBreaker({ name, logger: null })
  await okN(b, 2)
  const unregister = registerOpenTelemetry(api.metrics.getMeter('unreg'))
  let m = await collect()
  assert.deepEqual(pointsOf(m['circuit_breaker.calls'], name).find((p) => p.attributes.result === 'success').value, 2)
  assert.equal(pointsOf((await collect('DELTA'))['circuit_breaker.state'], name).length, 1)
  unregister()
  unregister()
  await okN(b, 3)
  m = await collect('DELTA')
  assert.deepEqual(pointsOf(m['circuit_breaker.calls'], name), [])
  assert.deepEqual(pointsOf(m['circuit_breaker.state'], name), [])
  b.dispose()
})

test('a value that is not a Meter is a TypeError naming the argument', () => {
  for (const bad of [undefined, null, {}, api.metrics, { createObservableGauge() {} }]) {
    assert.throws(() => registerOpenTelemetry(bad), (e) => e instanceof TypeError && /registerOpenTelemetry\(meter\)/.test(e.message))
  }
})

test('types: a real Meter, emitEmf(), CircuitState, PutMetricDataCommand and cloudWatchDimensionValue compile with tsc --strict', { timeout: 120_000 }, () => {
  const path = require('node:path')
  const { spawnSync } = require('node:child_process')
  const root = path.join(__dirname, '..')
  const r = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
    '--strict', '--noEmit', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022',
    '--types', 'node', path.join(__dirname, 'fixtures', 'metrics-usage.ts')], { cwd: root, encoding: 'utf8' })
  assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`)
})
