'use strict'
// Prometheus: the text exposition format (version 0.0.4), and a bridge into a prom-client
// registry. Both are built from one description of the metric families, so they agree.

const { metricsSnapshot } = require('../registry.js')

const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
const STATE_VALUE = { CLOSED: 0, HALF_OPEN: 1, OPEN: 2 }
const STATE_LABEL = { CLOSED: 'closed', OPEN: 'open', HALF_OPEN: 'half_open' }

/** A ratio 0-1 from a percentage, without binary-fraction noise (2.439 % -> 0.02439). */
let lastPercent = 0
let lastRatio = 0
function ratio(percent) {
  // toPrecision costs ~1 us; most circuits share a rate (0 above all): remember the last one
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
const SUFFIXES = ['', '_bucket', '_sum', '_count']
const [PLAIN, BUCKET, SUM, COUNT] = SUFFIXES.keys()

/**
 * The labels of a sample besides `name`, made once: as an object for the prom-client bridge,
 * and as the UTF-8 bytes of their text (`,k="v"`) for toPrometheus(). Their values are fixed
 * strings that need no escaping.
 */
function labelSet(labels) {
  const text = Object.entries(labels).map(([k, v]) => `,${k}="${v}"`).join('')
  return { labels, bytes: Buffer.from(text) }
}
const NO_LABELS = labelSet({})
const RESULT = Object.fromEntries(['success', 'failure', 'rejected', 'ignored'].map((r) => [r, labelSet({ result: r })]))
// TRANSITION[from][to]
const TRANSITION = Object.fromEntries(Object.keys(STATE_LABEL).map((from) =>
  [from, Object.fromEntries(Object.keys(STATE_LABEL).map((to) => [to, labelSet({ from: STATE_LABEL[from], to: STATE_LABEL[to] })]))]))
// The `le` label set of the i-th latency bucket (the bounds are the same for every circuit).
const LE = []
const leSet = (i, le) => {
  const v = LE[i]
  return v !== undefined && v.le === le ? v : (LE[i] = { le, ...labelSet({ le: formatValue(le) }) })
}
const LE_INF = labelSet({ le: '+Inf' })

/**
 * Calls `visit(family, suffix, labelSet, value)` for every sample of circuit `c` (one element
 * of metricsSnapshot()), family by family; `suffix` indexes SUFFIXES.
 */
function eachSample(c, visit) {
  const s = c.stats
  visit(STATE, PLAIN, NO_LABELS, STATE_VALUE[s.state] ?? 0)
  visit(CALLS, PLAIN, RESULT.success, s.successCount)
  visit(CALLS, PLAIN, RESULT.failure, s.failureCount)
  visit(CALLS, PLAIN, RESULT.rejected, s.rejectionCount)
  visit(CALLS, PLAIN, RESULT.ignored, s.ignoredCount)
  for (const t of c.transitions) visit(TRANSITIONS, PLAIN, TRANSITION[t.from][t.to], t.count)
  visit(FAILURE_RATE, PLAIN, NO_LABELS, ratio(s.failureRate))
  visit(TIMEOUTS, PLAIN, NO_LABELS, s.timeoutCount)
  visit(FALLBACKS, PLAIN, NO_LABELS, s.fallbackCount)
  visit(SLOW, PLAIN, NO_LABELS, s.slowCallCount)
  const l = c.latency
  const buckets = l.buckets
  for (let i = 0; i < buckets.length; i++) visit(LATENCY, BUCKET, leSet(i, buckets[i].le), buckets[i].count)
  visit(LATENCY, BUCKET, LE_INF, l.count)
  visit(LATENCY, SUM, NO_LABELS, l.sumSeconds)
  visit(LATENCY, COUNT, NO_LABELS, l.count)
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
    eachSample(c, (f, suffix, set, value) => {
      out[f].samples.push({ suffix: SUFFIXES[suffix], labels: { name, ...set.labels }, value })
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

// `family + suffix + '{name="'`, as bytes, by family and suffix
const PREFIX = FAMILIES.map((f) => SUFFIXES.map((suffix) => Buffer.from(`${f.name}${suffix}{name="`)))

/**
 * One family's exposition as UTF-8 bytes, written in place: no string per line, so no
 * garbage per line (10,000 circuits are 320,000 lines, and strings that live until the end
 * are what the garbage collector spends its time copying).
 */
class Sink {
  constructor(head, size) {
    this.buf = Buffer.allocUnsafe(size)
    this.len = 0
    this.text(head)
  }

  room(n) {
    if (this.len + n <= this.buf.length) return
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n))
    this.buf.copy(bigger, 0, 0, this.len)
    this.buf = bigger
  }

  bytes(b) {
    const n = b.length
    this.room(n)
    const buf = this.buf
    let o = this.len
    if (n > 24) buf.set(b, o) // a call into a memcpy pays off past a couple of dozen bytes
    else for (let i = 0; i < n; i++) buf[o + i] = b[i]
    this.len = o + n
  }

  text(s) {
    this.room(s.length * 3) // a UTF-16 code unit is at most 3 bytes of UTF-8
    this.len += this.buf.write(s, this.len)
  }

  /** `v` as Prometheus writes a value, then a newline. */
  value(v) {
    if (Number.isInteger(v) && v >= 0 && v < 1e15) {
      // a count: its digits, without a string
      this.room(17)
      const buf = this.buf
      let digits = 1
      for (let x = v; x >= 10; x = Math.floor(x / 10)) digits++
      let o = this.len + digits
      this.len = o + 1
      buf[o] = 10 // \n
      let x = v
      do {
        const q = Math.floor(x / 10)
        buf[--o] = 48 + x - q * 10
        x = q
      } while (x > 0)
    } else {
      this.text(`${formatValue(v)}\n`)
    }
  }
}

/**
 * Every circuit's metrics in the Prometheus text exposition format (valid for
 * `promtool check metrics`). Serve it with `toPrometheus.contentType`.
 * @returns {string}
 */
const HELP_ASCII = FAMILIES.every((f) => Buffer.byteLength(f.help) === f.help.length)

// Each family's size at the previous call: a scrape is sized like the one before, so its
// buffers are allocated once instead of doubled and copied as they fill.
const lastSize = FAMILIES.map(() => 0)

function toPrometheus() {
  const sinks = FAMILIES.map((f, i) => new Sink(`# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`, Math.max(1 << 12, Math.ceil(lastSize[i] * 1.05))))
  let name = null // the circuit's escaped name and closing quote, as bytes: made once per circuit
  let ascii = HELP_ASCII // then the text decodes as latin1, about twice as fast as UTF-8
  const visit = (f, suffix, set, value) => {
    const sink = sinks[f]
    sink.bytes(PREFIX[f][suffix])
    sink.bytes(name)
    sink.bytes(set.bytes)
    sink.bytes(CLOSE)
    sink.value(value)
  }
  for (const c of metricsSnapshot()) {
    const text = `${escapeLabel(String(c.name))}"`
    name = Buffer.from(text)
    if (name.length !== text.length) ascii = false
    eachSample(c, visit)
  }
  let out = ''
  for (let i = 0; i < sinks.length; i++) {
    lastSize[i] = sinks[i].len
    out += sinks[i].buf.toString(ascii ? 'latin1' : 'utf8', 0, sinks[i].len)
  }
  return out
}
const CLOSE = Buffer.from('} ')
toPrometheus.contentType = CONTENT_TYPE

const AGGREGATOR = { counter: 'sum', histogram: 'sum', gauge: 'max' }
const bridged = new WeakMap()

/**
 * Registers breakwater's metric families in a prom-client `Registry` (for instance
 * `require('prom-client').register`), so `await registry.metrics()` -- your existing /metrics
 * endpoint -- includes them. The values are read at each scrape. prom-client itself is not a
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
