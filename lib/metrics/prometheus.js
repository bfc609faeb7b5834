'use strict'
// Prometheus: the text exposition format (version 0.0.4), and a bridge into a prom-client
// registry. Both are built from one description of the metric families, so they agree.

const { metricsSnapshot } = require('../registry.js')

const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
const STATE_VALUE = { CLOSED: 0, HALF_OPEN: 1, OPEN: 2 }
const STATE_LABEL = { CLOSED: 'closed', OPEN: 'open', HALF_OPEN: 'half_open' }

/** A ratio 0–1 from a percentage, without binary-fraction noise (2.439 % -> 0.02439). */
const ratio = (percent) => Number((percent / 100).toPrecision(12))

/**
 * The metric families of every circuit in `snapshot` (what metricsSnapshot() returns).
 * @returns {Array<{ name: string, help: string, type: 'gauge' | 'counter' | 'histogram',
 *   samples: Array<{ suffix: string, labels: Record<string, string>, value: number }> }>}
 */
function families(snapshot) {
  const state = { name: 'circuit_breaker_state', type: 'gauge', samples: [],
    help: 'Circuit state: 0 closed, 1 half-open, 2 open.' }
  const calls = { name: 'circuit_breaker_calls_total', type: 'counter', samples: [],
    help: 'Calls by result (success, failure, rejected, ignored); the results add up to the total requests.' }
  const timeouts = { name: 'circuit_breaker_timeouts_total', type: 'counter', samples: [],
    help: 'Calls that timed out (also counted as result="failure").' }
  const fallbacks = { name: 'circuit_breaker_fallbacks_total', type: 'counter', samples: [],
    help: 'Calls answered by the fallback.' }
  const slow = { name: 'circuit_breaker_slow_calls_total', type: 'counter', samples: [],
    help: 'Calls slower than slowCallDurationMs.' }
  const transitions = { name: 'circuit_breaker_state_transitions_total', type: 'counter', samples: [],
    help: 'State transitions by from and to state.' }
  const failureRate = { name: 'circuit_breaker_failure_rate', type: 'gauge', samples: [],
    help: 'Failed calls / calls in the current window, as a ratio 0-1.' }
  const latency = { name: 'circuit_breaker_call_duration_seconds', type: 'histogram', samples: [],
    help: 'Duration of sampled calls in seconds (1 call in 16; every call when slowCallDurationMs is set), since creation or reset.' }

  for (const c of snapshot) {
    const s = c.stats
    const name = c.name
    state.samples.push({ suffix: '', labels: { name }, value: STATE_VALUE[s.state] ?? 0 })
    calls.samples.push(
      { suffix: '', labels: { name, result: 'success' }, value: s.successCount },
      { suffix: '', labels: { name, result: 'failure' }, value: s.failureCount },
      { suffix: '', labels: { name, result: 'rejected' }, value: s.rejectionCount },
      { suffix: '', labels: { name, result: 'ignored' }, value: s.ignoredCount },
    )
    timeouts.samples.push({ suffix: '', labels: { name }, value: s.timeoutCount })
    fallbacks.samples.push({ suffix: '', labels: { name }, value: s.fallbackCount })
    slow.samples.push({ suffix: '', labels: { name }, value: s.slowCallCount })
    for (const t of c.transitions) {
      transitions.samples.push({ suffix: '', labels: { name, from: STATE_LABEL[t.from], to: STATE_LABEL[t.to] }, value: t.count })
    }
    failureRate.samples.push({ suffix: '', labels: { name }, value: ratio(s.failureRate) })
    const l = c.latency
    for (const b of l.buckets) {
      latency.samples.push({ suffix: '_bucket', labels: { name, le: formatValue(b.le) }, value: b.count })
    }
    latency.samples.push(
      { suffix: '_bucket', labels: { name, le: '+Inf' }, value: l.count },
      { suffix: '_sum', labels: { name }, value: l.sumSeconds },
      { suffix: '_count', labels: { name }, value: l.count },
    )
  }
  return [state, calls, transitions, failureRate, timeouts, fallbacks, slow, latency]
}

function formatValue(v) {
  if (Number.isFinite(v)) return String(v)
  if (Number.isNaN(v)) return 'NaN'
  return v > 0 ? '+Inf' : '-Inf'
}
const escapeHelp = (s) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
const escapeLabel = (s) => String(s).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')

/**
 * Every circuit's metrics in the Prometheus text exposition format (valid for
 * `promtool check metrics`). Serve it with `toPrometheus.contentType`.
 * @returns {string}
 */
function toPrometheus() {
  const out = []
  for (const f of families(metricsSnapshot())) {
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`)
    for (const s of f.samples) {
      const labels = Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')
      out.push(`${f.name}${s.suffix}{${labels}} ${formatValue(s.value)}`)
    }
  }
  return out.join('\n') + '\n'
}
toPrometheus.contentType = CONTENT_TYPE

const AGGREGATOR = { counter: 'sum', histogram: 'sum', gauge: 'max' }
const bridged = new WeakMap()

/**
 * Registers breakwater's metric families in a prom-client `Registry` (for instance
 * `require('prom-client').register`), so `await registry.metrics()` — your existing /metrics
 * endpoint — includes them. The values are read at each scrape. prom-client itself is not a
 * dependency of breakwater: any object with prom-client's `registerMetric` works.
 * @param {{ registerMetric(metric: object): void, removeSingleMetric?(name: string): void }} registry
 * @returns {() => void} removes the families from the registry again
 */
function registerPrometheusMetrics(registry) {
  if (!registry || typeof registry.registerMetric !== 'function') {
    throw new TypeError('breakwater: registerPrometheusMetrics(registry) needs a prom-client Registry (an object with registerMetric), e.g. require(\'prom-client\').register')
  }
  const existing = bridged.get(registry)
  if (existing) return existing

  // One snapshot per scrape: prom-client asks every metric in one synchronous loop.
  let cached = null
  const snapshot = () => {
    if (cached === null) {
      cached = families(metricsSnapshot())
      queueMicrotask(() => { cached = null })
    }
    return cached
  }
  const names = families([]).map((f) => ({ name: f.name, help: f.help, type: f.type }))
  const metrics = names.map((desc) => ({
    // prom-client renames counters (drops `_total`) in OpenMetrics mode: read this.name.
    name: desc.name,
    help: desc.help,
    type: desc.type,
    aggregator: AGGREGATOR[desc.type],
    async get() {
      const f = snapshot().find((x) => x.name === desc.name)
      const self = this && typeof this.name === 'string' ? this.name : desc.name
      return {
        name: self,
        help: desc.help,
        type: desc.type,
        aggregator: AGGREGATOR[desc.type],
        values: f.samples.map((s) => ({
          // counters get their `_total` from prom-client in OpenMetrics mode
          ...(s.suffix ? { metricName: desc.name + s.suffix } : {}),
          labels: { ...s.labels },
          value: s.value,
        })),
      }
    },
    reset() {}, // the counts are the circuits' own; reset them with resetAllCircuitBreakers()
  }))
  for (const m of metrics) registry.registerMetric(m)
  const unregister = () => {
    if (bridged.get(registry) !== unregister) return
    bridged.delete(registry)
    if (typeof registry.removeSingleMetric !== 'function') return
    for (const d of names) registry.removeSingleMetric(d.name)
  }
  bridged.set(registry, unregister)
  return unregister
}

module.exports = { toPrometheus, registerPrometheusMetrics, families, PROMETHEUS_CONTENT_TYPE: CONTENT_TYPE }
