'use strict'
// CloudWatch Embedded Metric Format: one JSON document per line on stdout, in the `_aws`
// structure @aws-lambda-powertools/metrics prints. Lambda turns the lines into metrics
// without an API call.

const { createTracker, checkOptions, failureRateDecides, COUNTS, STATE_VALUE } = require('./cloudwatch.js')
const { cloudWatchDimensionValue } = require('./dimension.js')

/** The namespace when neither the option nor POWERTOOLS_METRICS_NAMESPACE gives one. */
const DEFAULT_NAMESPACE = 'Breakwater'

const tracker = createTracker()

/**
 * Writes every circuit's metrics to stdout in CloudWatch Embedded Metric Format, up to two
 * documents per circuit, one per line: the counts (deltas since the previous emitEmf call)
 * and `CircuitState`, dimension `Service`; and `FailureRate` (Percent; dimensions `Service`
 * and `State`) while the window holds at least the effective minimumRequests.
 * Call it at the end of a Lambda invocation (or on an interval in a server).
 * @param {{ namespace?: string, dimensions?: Array<{ Name: string, Value: string }>, metrics?: string[],
 *   write?: (line: string) => void }} [options] `namespace` defaults to
 *   POWERTOOLS_METRICS_NAMESPACE, then 'Breakwater'; `write` defaults to writing the line to
 *   process.stdout
 * @returns {object[]} the documents written
 */
function emitEmf(options) {
  const where = 'emitEmf({ namespace })'
  const raw = options === undefined || options === null ? {} : options
  if (typeof raw !== 'object') throw new TypeError(`breakwater: ${where}: options must be an object, got ${typeof raw}`)
  // an empty POWERTOOLS_METRICS_NAMESPACE (a template's unset parameter) counts as unset
  const namespace = raw.namespace !== undefined ? raw.namespace : process.env.POWERTOOLS_METRICS_NAMESPACE || DEFAULT_NAMESPACE
  const opts = checkOptions(where, { ...raw, namespace }, true)
  if (opts.write !== undefined && typeof opts.write !== 'function') throw new TypeError(`breakwater: ${where}: write must be a function`)
  const write = opts.write || ((line) => process.stdout.write(line))

  const extra = {}
  for (const d of opts.dimensions) extra[d.Name] = d.Value
  const extraNames = opts.dimensions.map((d) => d.Name)
  const counts = opts.metrics.filter((m) => m !== 'FailureRate')
  const docs = []
  const timestamp = Date.now()
  for (const item of tracker.collect()) {
    const service = cloudWatchDimensionValue(item.name)
    if (counts.length > 0) {
      const doc = {
        _aws: {
          Timestamp: timestamp,
          CloudWatchMetrics: [{
            Namespace: opts.namespace,
            Dimensions: [['Service', ...extraNames]],
            Metrics: counts.map((Name) => ({ Name, Unit: Name === 'CircuitState' ? 'None' : 'Count' })),
          }],
        },
        Service: service,
        ...extra,
      }
      for (const m of counts) doc[m] = m === 'CircuitState' ? STATE_VALUE[item.stats.state] : item.deltas[m]
      docs.push(doc)
    }
    if (opts.metrics.includes('FailureRate') && failureRateDecides(item.stats)) {
      docs.push({
        _aws: {
          Timestamp: timestamp,
          CloudWatchMetrics: [{
            Namespace: opts.namespace,
            Dimensions: [['Service', 'State', ...extraNames]],
            Metrics: [{ Name: 'FailureRate', Unit: 'Percent' }],
          }],
        },
        Service: service,
        State: item.stats.state,
        ...extra,
        FailureRate: item.stats.failureRate,
      })
    }
  }
  for (const doc of docs) write(JSON.stringify(doc) + '\n')
  return docs
}

module.exports = { emitEmf, DEFAULT_NAMESPACE, EMF_COUNT_METRICS: Object.keys(COUNTS) }
