'use strict'
// Prometheus: the text exposition format (version 0.0.4), and a bridge into a prom-client
// registry. Both are built from one description of the metric families, so they agree.

const { metricsSnapshot } = require('../registry.js')

const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
const STATE_VALUE = { CLOSED: 0, HALF_OPEN: 1, OPEN: 2 }
const STATE_LABEL = { CLOSED: 'closed', OPEN: 'open', HALF_OPEN: 'half_open' }

/** A ratio 0–1 from a percentage, without binary-fraction noise (2.439 % -> 0.02439). */
let lastPercent = 0
let lastRatio = 0
function ratio(percent) {
  // toPrecision costs ~1 µs; most circuits share a rate (0 above all): remember the last one
  if (percent !== lastPercent) {
    lastRatio = Number((percent / 100).toPrecision(12))
    lastPercent = percent
  }
  return lastRatio
}

// The metric families, in exposition order. toPrometheus() and the prom-client bridge both
// take their names, types and help from here and their samples from eachSample(), so they agree.
const FAMILIES = [
  { name: 'circuit_breaker_state', type: 'gauge',
    help: 'Circuit state: 0 closed, 1 half-open, 2 open.' },
  { name: 'circuit_breaker_calls_total', type: 'counter',
    help: 'Calls by result (success, failure, rejected, ignored); the results add up to the total requests.' },
  { name: 'circuit_breaker_state_transitions_total', type: 'counter',
    help: 'State transitions by from and to state.' },
  { name: 'circuit_breaker_failure_rate', type: 'gauge',
    help: 'Failed calls / calls in the current window, as a ratio 0-1.' },
  { name: 'circuit_breaker_timeouts_total', type: 'counter',
    help: 'Calls that timed out (also counted as result="failure").' },
  { name: 'circuit_breaker_fallbacks_total', type: 'counter',
    help: 'Calls answered by the fallback.' },
  { name: 'circuit_breaker_slow_calls_total', type: 'counter',
    help: 'Calls slower than slowCallDurationMs.' },
  { name: 'circuit_breaker_call_duration_seconds', type: 'histogram',
    help: 'Duration of sampled calls in seconds (1 call in 16; every call when slowCallDurationMs is set), since creation or reset.' },
]
const [STATE, CALLS, TRANSITIONS, FAILURE_RATE, TIMEOUTS, FALLBACKS, SLOW, LATENCY] = FAMILIES.keys()

/**
 * Calls `visit(family, suffix, k1, v1, k2, v2, value)` for every sample of circuit `c` (one
 * element of metricsSnapshot()), family by family; k1/v1 and k2/v2 are the labels besides
 * `name` (k = '' when absent). Label values other than the name are fixed strings that need
 * no escaping.
 */
function eachSample(c, visit) {
  const s = c.stats
  visit(STATE, '', '', '', '', '', STATE_VALUE[s.state] ?? 0)
  visit(CALLS, '', 'result', 'success', '', '', s.successCount)
  visit(CALLS, '', 'result', 'failure', '', '', s.failureCount)
  visit(CALLS, '', 'result', 'rejected', '', '', s.rejectionCount)
  visit(CALLS, '', 'result', 'ignored', '', '', s.ignoredCount)
  for (const t of c.transitions) visit(TRANSITIONS, '', 'from', STATE_LABEL[t.from], 'to', STATE_LABEL[t.to], t.count)
  visit(FAILURE_RATE, '', '', '', '', '', ratio(s.failureRate))
  visit(TIMEOUTS, '', '', '', '', '', s.timeoutCount)
  visit(FALLBACKS, '', '', '', '', '', s.fallbackCount)
  visit(SLOW, '', '', '', '', '', s.slowCallCount)
  const l = c.latency
  for (const b of l.buckets) visit(LATENCY, '_bucket', 'le', leLabel(b.le), '', '', b.count)
  visit(LATENCY, '_bucket', 'le', '+Inf', '', '', l.count)
  visit(LATENCY, '_sum', '', '', '', '', l.sumSeconds)
  visit(LATENCY, '_count', '', '', '', '', l.count)
}

const leLabels = new Map()
const leLabel = (le) => {
  let v = leLabels.get(le)
  if (v === undefined) leLabels.set(le, (v = formatValue(le)))
  return v
}

/**
 * The metric families of every circuit in `snapshot` (what metricsSnapshot() returns), with
 * a sample object per sample: for the prom-client bridge.
 * @returns {Array<{ name: string, help: string, type: 'gauge' | 'counter' | 'histogram',
 *   samples: Array<{ suffix: string, labels: Record<string, string>, value: number }> }>}
 */
function families(snapshot) {
  const out = FAMILIES.map((f) => ({ ...f, samples: [] }))
  for (const c of snapshot) {
    const name = c.name
    eachSample(c, (f, suffix, k1, v1, k2, v2, value) => {
      const labels = { name }
      if (k1) labels[k1] = v1
      if (k2) labels[k2] = v2
      out[f].samples.push({ suffix, labels, value })
    })
  }
  return out
}

function formatValue(v) {
  if (Number.isFinite(v)) return String(v)
  if (Number.isNaN(v)) return 'NaN'
  return v > 0 ? '+Inf' : '-Inf'
}
const escapeHelp = (s) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
const NEEDS_ESCAPE = /[\\\n"]/
const escapeLabel = (s) => (NEEDS_ESCAPE.test(s) ? s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"') : s)

/**
 * One family's text, kept as flat chunks of about 64 KiB: pieces appended to a string make a
 * rope that V8 copies out when the string is used, and an array of every line until the end
 * keeps 320,000 small strings alive long enough for the garbage collector to copy each twice.
 */
class Text {
  constructor(first) {
    this.chunks = []
    this.cur = first
  }

  add(s) {
    this.cur += s
    if (this.cur.length > 65536) this.flush()
  }

  flush() {
    // reading a character flattens the rope into one string, in the young generation
    this.cur.charCodeAt(0)
    this.chunks.push(this.cur)
    this.cur = ''
  }

  text() {
    this.flush()
    return this.chunks.join('')
  }
}

/**
 * Every circuit's metrics in the Prometheus text exposition format (valid for
 * `promtool check metrics`). Serve it with `toPrometheus.contentType`.
 *
 * 10,000 circuits are 320,000 lines: no object per sample, and a circuit's name is escaped
 * once, not once per sample.
 * @returns {string}
 */
function toPrometheus() {
  const families = FAMILIES.map((f) => new Text(`# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`))
  let head = ''
  const visit = (f, suffix, k1, v1, k2, v2, value) => {
    const line = k1 === '' ? head : k2 === '' ? `${head},${k1}="${v1}"` : `${head},${k1}="${v1}",${k2}="${v2}"`
    families[f].add(`${FAMILIES[f].name}${suffix}${line}} ${formatValue(value)}\n`)
  }
  for (const c of metricsSnapshot()) {
    head = `{name="${escapeLabel(String(c.name))}"`
    eachSample(c, visit)
  }
  return families.map((t) => t.text()).join('')
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
  const names = FAMILIES
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
