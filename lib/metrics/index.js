'use strict'
// The metrics exporters: module-level functions over every circuit of the process.

const { toPrometheus, registerPrometheusMetrics } = require('./prometheus.js')
const { toCloudWatchMetricData, publishToCloudWatch } = require('./cloudwatch.js')
const { emitEmf } = require('./emf.js')
const { cloudWatchAlarms, cloudWatchDashboard, cloudFormationResources } = require('./alarms.js')
const { createStatsHandler } = require('./stats-handler.js')
const { cloudWatchDimensionValue } = require('./dimension.js')
const { registerOpenTelemetry } = require('./otel.js')

module.exports = {
  toPrometheus,
  registerPrometheusMetrics,
  toCloudWatchMetricData,
  publishToCloudWatch,
  emitEmf,
  cloudWatchAlarms,
  cloudWatchDashboard,
  cloudFormationResources,
  createStatsHandler,
  cloudWatchDimensionValue,
  registerOpenTelemetry,
}
