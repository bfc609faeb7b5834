'use strict'
// The metrics exporters: module-level functions over every circuit of the process. Each
// module loads on the first call of one of its functions (see ../lazy.js): to export another
// function, add its name under its module here.

const { lazyExports } = require('../lazy.js')

module.exports = lazyExports(require, {
  './prometheus.js': ['toPrometheus', 'registerPrometheusMetrics'],
  './cloudwatch.js': ['toCloudWatchMetricData', 'publishToCloudWatch'],
  './emf.js': ['emitEmf'],
  './alarms.js': ['cloudWatchAlarms', 'cloudWatchDashboard', 'cloudFormationResources'],
  './stats-handler.js': ['createStatsHandler'],
  './dimension.js': ['cloudWatchDimensionValue'],
  './otel.js': ['registerOpenTelemetry'],
}, {
  toPrometheus: ['contentType'],
})
