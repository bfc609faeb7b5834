// ESM entry: the same objects as the CommonJS entry (one set of classes, one registry).
import cjs from './index.js'

export const {
  CircuitBreaker,
  CircuitState,
  CircuitBreakerOpenError,
  CircuitBreakerTimeoutError,
  RetryExhaustedError,
  retry,
  withCircuitBreaker,
  presets,
  configure,
  fileStore,
  redisStore,
  dynamoDbStore,
  getAllCircuitBreakerStats,
  getCircuitBreaker,
  resetAllCircuitBreakers,
  getHealthSummary,
  createExternalServiceCircuitBreaker,
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
} = cjs
export default cjs
