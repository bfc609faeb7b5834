'use strict'
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const bw = require('../index.js')
const { uniq, failN, okN } = require('./helpers.js')
const { requireTool } = require('./helpers/tools.js')

const { CircuitBreaker, toPrometheus, registerPrometheusMetrics } = bw

function promtool(text) {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 })
  return { status: r.status, out: `${r.stdout}${r.stderr}` }
}

/** Parses the exposition format into [{ name, labels, value }] (enough for these tests). */
function parse(text) {
  const out = []
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    assert.ok(m, `unparseable line: ${line}`)
    const labels = {}
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g
    let l
    while ((l = re.exec(m[2] || '')) !== null) {
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c))
    }
    out.push({ name: m[1], labels, value: Number(m[3].replace('+Inf', 'Infinity')) })
  }
  return out
}
const pick = (samples, name, labels) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
const one = (samples, name, labels) => {
  const found = pick(samples, name, labels)
  assert.equal(found.length, 1, `${name} ${JSON.stringify(labels)}: ${found.length} samples`)
  return found[0].value
}

test('toPrometheus: families, values and labels of a circuit', async () => {
  const name = uniq('prom')
  const b = new CircuitBreaker({ name, logger: null, minimumRequests: 4, failureThreshold: 0.5, resetTimeout: 60_000, fallback: () => 'fb' })
  await okN(b, 6)
  await failN(b, 2)
  await b.execute(() => { const e = new Error('x'); throw e }) // fallback answers
  b.open(60_000) // CLOSED -> OPEN
  await b.execute(() => 'never') // rejected, fallback answers
  const text = toPrometheus()
  const s = parse(text)
  const stats = b.getStats()

  assert.equal(one(s, 'circuit_breaker_state', { name }), 2)
  assert.equal(one(s, 'circuit_breaker_calls_total', { name, result: 'success' }), 6)
  assert.equal(one(s, 'circuit_breaker_calls_total', { name, result: 'failure' }), 3)
  assert.equal(one(s, 'circuit_breaker_calls_total', { name, result: 'rejected' }), 1)
  assert.equal(one(s, 'circuit_breaker_calls_total', { name, result: 'ignored' }), 0)
  const sum = pick(s, 'circuit_breaker_calls_total', { name }).reduce((a, x) => a + x.value, 0)
  assert.equal(sum, stats.totalRequests, 'results add up to totalRequests')
  assert.equal(one(s, 'circuit_breaker_fallbacks_total', { name }), stats.fallbackCount)
  assert.equal(one(s, 'circuit_breaker_state_transitions_total', { name, from: 'closed', to: 'open' }), 1)
  assert.equal(one(s, 'circuit_breaker_state_transitions_total', { name, from: 'open', to: 'closed' }), 0)
  assert.equal(pick(s, 'circuit_breaker_state_transitions_total', { name }).length, 6)
  const rate = one(s, 'circuit_breaker_failure_rate', { name })
  assert.ok(rate >= 0 && rate <= 1, `ratio: ${rate}`)
  assert.ok(Math.abs(rate - stats.failureRate / 100) < 1e-9, `${rate} vs ${stats.failureRate}%`)
  assert.ok(rate > 0.3, 'three failures in nine calls')

  // the histogram: cumulative buckets, +Inf = count, seconds
  const buckets = pick(s, 'circuit_breaker_call_duration_seconds_bucket', { name })
  assert.ok(buckets.length >= 2)
  assert.equal(buckets.at(-1).labels.le, '+Inf')
  for (let i = 1; i < buckets.length; i++) {
    assert.ok(buckets[i].value >= buckets[i - 1].value, 'cumulative')
    assert.ok(Number(buckets[i].labels.le.replace('+Inf', 'Infinity')) > Number(buckets[i - 1].labels.le))
  }
  const count = one(s, 'circuit_breaker_call_duration_seconds_count', { name })
  assert.equal(buckets.at(-1).value, count)
  assert.ok(count >= 1, 'the first call is sampled')
  const secs = one(s, 'circuit_breaker_call_duration_seconds_sum', { name })
  assert.ok(secs >= 0 && secs < 1, `seconds, not ms: ${secs}`)

  // one HELP and one TYPE per family
  for (const fam of ['circuit_breaker_state', 'circuit_breaker_calls_total', 'circuit_breaker_state_transitions_total',
    'circuit_breaker_failure_rate', 'circuit_breaker_call_duration_seconds']) {
    assert.equal(text.split('\n').filter((l) => l.startsWith(`# TYPE ${fam} `)).length, 1, fam)
    assert.equal(text.split('\n').filter((l) => l.startsWith(`# HELP ${fam} `)).length, 1, fam)
  }
  assert.match(text, /# TYPE circuit_breaker_call_duration_seconds histogram/)
  assert.ok(text.endsWith('\n'))
  assert.equal(toPrometheus.contentType, 'text/plain; version=0.0.4; charset=utf-8')
  b.dispose()
})

test('toPrometheus: state values 0 closed, 1 half-open, 2 open', () => {
  const name = uniq('prom-state')
  const b = new CircuitBreaker({ name, logger: null })
  assert.equal(one(parse(toPrometheus()), 'circuit_breaker_state', { name }), 0)
  b.halfOpen()
  assert.equal(one(parse(toPrometheus()), 'circuit_breaker_state', { name }), 1)
  b.open()
  assert.equal(one(parse(toPrometheus()), 'circuit_breaker_state', { name }), 2)
  const s = parse(toPrometheus())
  assert.equal(one(s, 'circuit_breaker_state_transitions_total', { name, from: 'closed', to: 'half_open' }), 1)
  assert.equal(one(s, 'circuit_breaker_state_transitions_total', { name, from: 'half_open', to: 'open' }), 1)
  b.dispose()
  assert.equal(pick(parse(toPrometheus()), 'circuit_breaker_state', { name }).length, 0, 'disposed circuits disappear')
})

test('toPrometheus: label values are escaped (quotes, backslashes, newlines, unicode)', async (t) => {
  const name = `${uniq('prom-esc')} "q" \\ back\nline é→`
  const b = new CircuitBreaker({ name, logger: null })
  await okN(b, 1)
  const text = toPrometheus()
  assert.equal(one(parse(text), 'circuit_breaker_calls_total', { name, result: 'success' }), 1)
  if (requireTool(t, 'promtool')) {
    const r = promtool(text)
    assert.equal(r.status, 0, r.out)
  }
  b.dispose()
})

test('promtool check metrics accepts the output (several circuits, every state)', async (t) => {
  if (!requireTool(t, 'promtool')) return
  const made = []
  for (const state of ['closed', 'open', 'half', 'busy']) {
    const b = new CircuitBreaker({ name: uniq(`promtool-${state}`), logger: null, minimumRequests: 2 })
    made.push(b)
    if (state === 'open') await failN(b, 3)
    if (state === 'half') b.halfOpen()
    if (state === 'busy') { await okN(b, 50); await failN(b, 1) }
  }
  const r = promtool(toPrometheus())
  assert.equal(r.status, 0, `promtool check metrics: ${r.out}`)
  assert.equal(r.out.trim(), '', `no lint findings: ${r.out}`)
  for (const b of made) b.dispose()
})

test('registerPrometheusMetrics: a prom-client registry serves breakwater metrics next to its own', async (t) => {
  const client = require('prom-client')
  const registry = new client.Registry()
  const own = new client.Counter({ name: 'app_requests_total', help: 'Requests.', registers: [registry] })
  own.inc(3)
  const name = uniq('promclient')
  const b = new CircuitBreaker({ name, logger: null })
  await okN(b, 4)
  await failN(b, 1)

  const unregister = registerPrometheusMetrics(registry)
  assert.equal(registerPrometheusMetrics(registry), unregister, 'idempotent per registry')
  let text = await registry.metrics()
  let s = parse(text)
  assert.equal(one(s, 'app_requests_total', {}), 3)
  assert.equal(one(s, 'circuit_breaker_calls_total', { name, result: 'success' }), 4)
  assert.equal(one(s, 'circuit_breaker_calls_total', { name, result: 'failure' }), 1)
  assert.equal(one(s, 'circuit_breaker_state', { name }), 0)
  assert.equal(pick(s, 'circuit_breaker_call_duration_seconds_bucket', { name, le: '+Inf' }).length, 1)
  if (requireTool(t, 'promtool')) {
    const r = promtool(text)
    assert.equal(r.status, 0, r.out)
  }

  // values are read at scrape time
  await okN(b, 2)
  s = parse(await registry.metrics())
  assert.equal(one(s, 'circuit_breaker_calls_total', { name, result: 'success' }), 6)

  // JSON, default labels, resetMetrics do not break
  registry.setDefaultLabels({ app: 'shop' })
  s = parse(await registry.metrics())
  assert.equal(one(s, 'circuit_breaker_state', { name, app: 'shop' }), 0)
  const json = await registry.getMetricsAsJSON()
  const calls = json.find((m) => m.name === 'circuit_breaker_calls_total')
  assert.equal(calls.type, 'counter')
  assert.ok(calls.values.some((v) => v.labels.name === name && v.labels.result === 'success' && v.value === 6))
  registry.resetMetrics()
  assert.equal(one(parse(await registry.metrics()), 'circuit_breaker_calls_total', { name, result: 'success' }), 6)

  unregister()
  text = await registry.metrics()
  assert.doesNotMatch(text, /circuit_breaker_/)
  assert.match(text, /app_requests_total/)
  b.dispose()
})

test('registerPrometheusMetrics: the OpenMetrics content type works too', async () => {
  const client = require('prom-client')
  const registry = new client.Registry(client.Registry.OPENMETRICS_CONTENT_TYPE)
  const name = uniq('openmetrics')
  const b = new CircuitBreaker({ name, logger: null })
  await okN(b, 2)
  registerPrometheusMetrics(registry)
  const text = await registry.metrics()
  assert.match(text, /# TYPE circuit_breaker_calls counter\n/)
  assert.ok(text.includes(`circuit_breaker_calls_total{name="${name}",result="success"} 2`), text)
  assert.ok(text.endsWith('# EOF\n'))
  b.dispose()
})

test('registerPrometheusMetrics: rejects what is not a registry', () => {
  assert.throws(() => registerPrometheusMetrics({}), (e) => e instanceof TypeError && /registerMetric/.test(e.message))
  assert.throws(() => registerPrometheusMetrics(undefined), TypeError)
})

test('ESM entry exports the metrics functions (same objects as CJS)', async () => {
  const esm = await import('../esm.cjs')
  for (const fn of ['toPrometheus', 'registerPrometheusMetrics', 'toCloudWatchMetricData', 'publishToCloudWatch', 'emitEmf',
    'cloudWatchAlarms', 'cloudWatchDashboard', 'cloudFormationResources', 'createStatsHandler']) {
    assert.equal(typeof esm[fn], 'function', fn)
    assert.equal(esm[fn], bw[fn], fn)
  }
})
