'use strict'
// CloudWatch: MetricData for PutMetricData (counts as deltas since the previous call), and a
// publisher that takes the user's own client. breakwater does not depend on the AWS SDK.

const { metricsSnapshot, getCircuitBreaker } = require('../registry.js')
const { cloudWatchDimensionValue, isValidDimensionValue } = require('./dimension.js')

/** The count metrics: CloudWatch name -> stats field. Published as deltas, unit Count. */
const COUNTS = {
  TotalRequests: 'totalRequests',
  SuccessCount: 'successCount',
  FailureCount: 'failureCount',
  RejectionCount: 'rejectionCount',
  TimeoutCount: 'timeoutCount',
  FallbackCount: 'fallbackCount',
  IgnoredCount: 'ignoredCount',
  SlowCallCount: 'slowCallCount',
}
/** `CircuitState`: 0 closed, 1 half-open, 2 open (as Prometheus' circuit_breaker_state). */
const STATE_VALUE = { CLOSED: 0, HALF_OPEN: 1, OPEN: 2 }
const METRIC_NAMES = [...Object.keys(COUNTS), 'FailureRate', 'CircuitState']

/**
 * True while the window holds at least the effective minimumRequests (min(minimumRequests,
 * size) for a count window): below it the rate decides nothing, and one failure right after
 * a probe closed the circuit must not read as 100% to an alarm.
 */
function failureRateDecides(stats) {
  const calls = stats.window.calls
  if (calls >= stats.minimumRequests) return true
  if (calls === 0) return false
  // only a count window smaller than minimumRequests lowers the minimum: ask the circuit
  const b = getCircuitBreaker(stats.name)
  const w = b && b._o && b._o.window
  return w !== undefined && w !== null && w.type === 'count' && calls >= w.size
}

// PutMetricData limits: 1000 metrics and 1 MB per request. The size is estimated as the
// query-protocol encoding (the most verbose of the protocols the SDK may use), with a margin.
const MAX_METRICS_PER_REQUEST = 1000
const MAX_REQUEST_BYTES = 1_000_000

function checkOptions(where, opts, needNamespace) {
  if (opts === undefined || opts === null) opts = {}
  if (typeof opts !== 'object') throw new TypeError(`breakwater: ${where}: options must be an object, got ${typeof opts}`)
  if (needNamespace || opts.namespace !== undefined) checkNamespace(where, opts.namespace)
  const dims = opts.dimensions === undefined ? [] : opts.dimensions
  if (!Array.isArray(dims) || dims.some((d) => !d || typeof d.Name !== 'string' || !d.Name || typeof d.Value !== 'string' || !d.Value)) {
    throw new TypeError(`breakwater: ${where}: dimensions must be an array of { Name, Value } with non-empty strings`)
  }
  // unlike circuit names, these are the caller's constants: a bad one is a configuration error
  for (const d of dims) {
    if (d.Name.length > 255 || d.Name.startsWith(':') || !isValidDimensionValue(d.Name) || !isValidDimensionValue(d.Value)) {
      throw new TypeError(`breakwater: ${where}: dimension ${JSON.stringify(d)} is not valid in CloudWatch (ASCII without control characters, not blank; Name at most 255 characters and not starting with ':', Value at most 1024)`)
    }
  }
  for (const d of dims) {
    if (d.Name === 'Service' || d.Name === 'State' || d.Name === '_aws' || METRIC_NAMES.includes(d.Name)) throw new TypeError(`breakwater: ${where}: dimension ${d.Name} is a name breakwater uses`)
  }
  if (dims.length > 28) throw new RangeError(`breakwater: ${where}: at most 28 extra dimensions (CloudWatch allows 30), got ${dims.length}`)
  let metrics = METRIC_NAMES
  if (opts.metrics !== undefined) {
    if (!Array.isArray(opts.metrics) || opts.metrics.some((m) => !METRIC_NAMES.includes(m))) {
      throw new TypeError(`breakwater: ${where}: metrics must be an array of ${METRIC_NAMES.join(', ')}; got ${JSON.stringify(opts.metrics)}`)
    }
    metrics = opts.metrics
  }
  return { ...opts, dimensions: dims, metrics }
}

function checkNamespace(where, ns) {
  if (typeof ns !== 'string' || ns.length === 0 || ns.length > 255) {
    throw new TypeError(`breakwater: ${where}: namespace must be a non-empty string (at most 255 characters), got ${JSON.stringify(ns)}`)
  }
  if (/^AWS\//i.test(ns)) throw new TypeError(`breakwater: ${where}: namespace ${JSON.stringify(ns)} is reserved for AWS services`)
}

/**
 * Delta bookkeeping of one exporter: the counters each circuit had when last collected.
 * Collecting advances the baseline at once (so overlapping publishes never count twice);
 * `rollback` gives a failed publish's counts back to the next one.
 */
function createTracker() {
  const last = new Map()
  return {
    /** @returns {Array<{ name: string, stats: object, deltas: Record<string, number>, rollback(): void }>} */
    collect() {
      const snap = metricsSnapshot()
      const seen = new Set()
      const out = []
      for (const c of snap) {
        seen.add(c.name)
        const prev = last.get(c.name)
        const now = {}
        const deltas = {}
        for (const [metric, field] of Object.entries(COUNTS)) {
          const cur = c.stats[field]
          now[metric] = cur
          const before = prev ? prev[metric] : 0
          // counters only go down when the circuit was reset (or re-created): count from 0
          deltas[metric] = cur >= before ? cur - before : cur
        }
        last.set(c.name, now)
        out.push({
          name: c.name,
          stats: c.stats,
          deltas,
          rollback() {
            const base = last.get(c.name)
            if (!base) return
            for (const m of Object.keys(COUNTS)) base[m] = Math.max(0, base[m] - deltas[m])
          },
        })
      }
      for (const name of last.keys()) if (!seen.has(name)) last.delete(name) // disposed
      return out
    },
  }
}

function metricDataOf(item, opts, timestamp) {
  const value = cloudWatchDimensionValue(item.name)
  const service = [{ Name: 'Service', Value: value }, ...opts.dimensions]
  const data = []
  for (const metric of opts.metrics) {
    if (metric === 'FailureRate') {
      if (!failureRateDecides(item.stats)) continue
      data.push({
        MetricName: 'FailureRate',
        Dimensions: [{ Name: 'Service', Value: value }, { Name: 'State', Value: item.stats.state }, ...opts.dimensions],
        Unit: 'Percent',
        Value: item.stats.failureRate,
        Timestamp: timestamp,
      })
    } else if (metric === 'CircuitState') {
      data.push({ MetricName: metric, Dimensions: service, Unit: 'None', Value: STATE_VALUE[item.stats.state], Timestamp: timestamp })
    } else {
      data.push({ MetricName: metric, Dimensions: service, Unit: 'Count', Value: item.deltas[metric], Timestamp: timestamp })
    }
  }
  return data
}

const defaultTracker = createTracker()

/**
 * The `MetricData` array for the AWS SDK v3 `PutMetricDataCommand`, one entry set per circuit:
 * counts (`TotalRequests`, `SuccessCount`, `FailureCount`, `RejectionCount`, `TimeoutCount`,
 * `FallbackCount`, `IgnoredCount`, `SlowCallCount`; unit Count, dimension `Service`) are deltas
 * since the previous call of toCloudWatchMetricData / publishToCloudWatch (since creation
 * on the first); `FailureRate` is the window's rate in Percent with dimensions `Service` and
 * `State`, present only while the window holds at least the effective minimumRequests;
 * `CircuitState` (unit None, dimension `Service`) is 0 closed, 1 half-open, 2 open. `Service`
 * is the circuit's name, or cloudWatchDimensionValue(name) for a name CloudWatch would refuse.
 * It may hold more than 1000 entries: publishToCloudWatch splits it into requests.
 * @param {{ dimensions?: Array<{ Name: string, Value: string }>, metrics?: string[] }} [options]
 */
function toCloudWatchMetricData(options) {
  const opts = checkOptions('toCloudWatchMetricData(options)', options, false)
  const now = new Date()
  return defaultTracker.collect().flatMap((item) => metricDataOf(item, opts, now))
}

/** An upper bound of a datum's size in a PutMetricData request. */
function estimateBytes(datum) {
  let n = 0
  const walk = (prefix, v) => {
    if (v instanceof Date) v = v.toISOString()
    if (Array.isArray(v)) v.forEach((x, i) => walk(`${prefix}.member.${i + 1}`, x))
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(`${prefix}.${k}`, x)
    else n += prefix.length + 2 + encodeURIComponent(String(v)).length
  }
  walk('MetricData.member.1000', datum)
  return n
}

/** Splits per-circuit groups into requests within the limits; a circuit is never split unless it alone exceeds them. */
function batches(groups, maxMetrics, maxBytes) {
  const base = 200 // Action, Version, Namespace
  const fresh = () => ({ data: [], bytes: base, groups: new Set() })
  const out = []
  let cur = fresh()
  for (const g of groups) {
    const total = g.bytes.reduce((a, b) => a + b, 0)
    if (cur.data.length > 0 && (cur.data.length + g.data.length > maxMetrics || cur.bytes + total > maxBytes)) {
      out.push(cur)
      cur = fresh()
    }
    for (let i = 0; i < g.data.length; i++) {
      if (cur.data.length > 0 && (cur.data.length + 1 > maxMetrics || cur.bytes + g.bytes[i] > maxBytes)) {
        out.push(cur)
        cur = fresh()
      }
      cur.data.push(g.data[i])
      cur.bytes += g.bytes[i]
      cur.groups.add(g)
    }
  }
  if (cur.data.length > 0) out.push(cur)
  return out
}

// PutMetricDataCommand must come from the same copy of @aws-sdk/client-cloudwatch as the
// client: a command of another SDK version may serialise differently. breakwater never
// loads the SDK from its own folder -- a handler bundled by esbuild carries its SDK inside the
// bundle, where no require can reach it -- but from where the application's modules are: the
// Lambda task root or working directory, the entry script, and NODE_PATH (which on Lambda
// holds the runtime's SDK). The copy found is used only if the client was made by it.
const commands = new WeakMap() // CloudWatchClient class -> its PutMetricDataCommand

function commandOf(client) {
  const known = commands.get(client.constructor)
  if (known) return known
  const { createRequire } = require('node:module')
  const path = require('node:path')
  let cwd = null
  try { cwd = process.cwd() } catch {} // the working directory may have been removed
  const dirs = [process.env.LAMBDA_TASK_ROOT, cwd, process.argv[1] && path.dirname(process.argv[1]),
    require.main && require.main.filename && path.dirname(require.main.filename)]
  for (const dir of new Set(dirs.filter(Boolean))) {
    let sdk
    try {
      sdk = createRequire(path.join(path.resolve(dir), 'index.js'))('@aws-sdk/client-cloudwatch')
    } catch {
      continue
    }
    if (typeof sdk.CloudWatchClient === 'function' && typeof sdk.PutMetricDataCommand === 'function' && client instanceof sdk.CloudWatchClient) {
      commands.set(client.constructor, sdk.PutMetricDataCommand)
      return sdk.PutMetricDataCommand
    }
  }
  return null
}

/**
 * Publishes every circuit's metrics (see toCloudWatchMetricData) with the user's own
 * CloudWatch client, in as many PutMetricData requests as the limits require (1000 metrics,
 * 1 MB each), one after another. Counts of a request that failed are published next time.
 * @param {{ send(command: unknown): Promise<unknown> } | { putMetricData(input: object): unknown }} client
 *   a `CloudWatchClient` (or the aggregated `CloudWatch`) from @aws-sdk/client-cloudwatch.
 *   The command used is `options.PutMetricDataCommand` if given, else the client's own
 *   `putMetricData` (aggregated client), else the PutMetricDataCommand of the SDK copy that
 *   made the client, found where the application's modules are (see commandOf); without
 *   one of them it rejects with a TypeError saying to pass PutMetricDataCommand.
 * @param {{ namespace: string, dimensions?: Array<{ Name: string, Value: string }>, metrics?: string[],
 *   PutMetricDataCommand?: new (input: object) => unknown }} options
 * @returns {Promise<{ requests: number, metrics: number }>}
 * @throws (rejects with) an AggregateError listing the failed requests' errors
 */
async function publishToCloudWatch(client, options) {
  const where = 'publishToCloudWatch(client, { namespace })'
  if (!client || (typeof client.send !== 'function' && typeof client.putMetricData !== 'function')) {
    throw new TypeError(`breakwater: ${where}: client must be a CloudWatchClient from @aws-sdk/client-cloudwatch`)
  }
  const opts = checkOptions(where, options, true)
  if (opts.PutMetricDataCommand !== undefined && typeof opts.PutMetricDataCommand !== 'function') {
    throw new TypeError(`breakwater: ${where}: PutMetricDataCommand must be the class from @aws-sdk/client-cloudwatch`)
  }
  const maxMetrics = opts.maxMetricsPerRequest ?? MAX_METRICS_PER_REQUEST
  const maxBytes = opts.maxRequestBytes ?? MAX_REQUEST_BYTES
  let send
  if (opts.PutMetricDataCommand) send = (input) => client.send(new opts.PutMetricDataCommand(input))
  else if (typeof client.putMetricData === 'function') {
    send = (input) => {
      const r = client.putMetricData(input)
      return r && typeof r.promise === 'function' ? r.promise() : r // SDK v2 requests have .promise()
    }
  } else {
    const Command = commandOf(client)
    if (Command === null) {
      throw new TypeError(`breakwater: ${where}: cannot find the PutMetricDataCommand of this client's @aws-sdk/client-cloudwatch (it is bundled into your code, or not installed where the application runs): pass it \u2014 import { PutMetricDataCommand } from '@aws-sdk/client-cloudwatch' and call publishToCloudWatch(client, { namespace, PutMetricDataCommand })`)
    }
    send = (input) => client.send(new Command(input))
  }

  const now = new Date()
  const groups = defaultTracker.collect().map((item) => {
    const data = metricDataOf(item, opts, now)
    return { item, data, bytes: data.map(estimateBytes) }
  })
  const requests = batches(groups, maxMetrics, maxBytes)
  const errors = []
  let sent = 0
  for (const req of requests) {
    try {
      await send({ Namespace: opts.namespace, MetricData: req.data })
      sent += req.data.length
    } catch (err) {
      errors.push(err)
      for (const g of req.groups) if (!g.rolledBack) { g.rolledBack = true; g.item.rollback() }
    }
  }
  if (errors.length) {
    throw new AggregateError(errors, `breakwater: publishToCloudWatch: ${errors.length} of ${requests.length} PutMetricData requests failed: ${errors[0] && errors[0].message}`)
  }
  return { requests: requests.length, metrics: sent }
}

module.exports = {
  toCloudWatchMetricData, publishToCloudWatch,
  // internal, for emf.js / alarms.js and tests
  createTracker, checkOptions, checkNamespace, failureRateDecides, COUNTS, METRIC_NAMES, STATE_VALUE, batches, estimateBytes,
}
