'use strict'
// OpenTelemetry: every circuit's figures as observable instruments on the user's Meter. The
// Meter is all we touch -- breakwater never loads @opentelemetry/api itself (an optional peer
// dependency: the user's own copy made the Meter) -- and one batch callback reads one registry
// snapshot per collection, so the instruments of one export always agree with each other.

const { metricsSnapshot } = require('../registry.js')
const { STATE_VALUE } = require('./cloudwatch.js')

// result attribute -> stats field; together they sum to totalRequests
const RESULTS = [['success', 'successCount'], ['failure', 'failureCount'], ['rejected', 'rejectionCount'], ['ignored', 'ignoredCount']]

/**
 * Registers `circuit_breaker.state` (gauge: 0 closed, 1 half-open, 2 open),
 * `circuit_breaker.calls` (counter, attribute `result`: success, failure, rejected, ignored)
 * and `circuit_breaker.failure_rate` (gauge, the window's rate as a ratio 0-1), each with the
 * attribute `name`, on `meter`. Call it once per Meter.
 * @param {import('../../index').OpenTelemetryMeter} meter a Meter from @opentelemetry/api
 * @returns {() => void} removes the callback: the instruments report nothing from then on
 */
function registerOpenTelemetry(meter) {
  const where = 'registerOpenTelemetry(meter)'
  for (const m of ['createObservableGauge', 'createObservableCounter', 'addBatchObservableCallback', 'removeBatchObservableCallback']) {
    if (!meter || typeof meter[m] !== 'function') {
      throw new TypeError(`breakwater: ${where}: meter must be a Meter from @opentelemetry/api (1.3 or later: metrics.getMeter('my-service')), but it has no ${m}()`)
    }
  }
  const state = meter.createObservableGauge('circuit_breaker.state', {
    description: 'Circuit state: 0 closed, 1 half-open, 2 open',
    unit: '{state}',
  })
  const calls = meter.createObservableCounter('circuit_breaker.calls', {
    description: 'Calls by result (success, failure, rejected, ignored) since the circuit was created or reset',
    unit: '{call}',
  })
  const failureRate = meter.createObservableGauge('circuit_breaker.failure_rate', {
    description: "Failure rate of the circuit's window, 0-1",
    unit: '1',
  })
  const instruments = [state, calls, failureRate]
  const callback = (result) => {
    for (const { name, stats } of metricsSnapshot()) {
      result.observe(state, STATE_VALUE[stats.state], { name })
      for (const [r, field] of RESULTS) result.observe(calls, stats[field], { name, result: r })
      result.observe(failureRate, stats.failureRate / 100, { name })
    }
  }
  meter.addBatchObservableCallback(callback, instruments)
  let registered = true
  return function unregister() {
    if (!registered) return
    registered = false
    meter.removeBatchObservableCallback(callback, instruments)
  }
}

module.exports = { registerOpenTelemetry }
