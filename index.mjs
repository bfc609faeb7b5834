// ESM entry: the same objects as the CommonJS entry (one set of classes, one registry).
// Loaded with `require`, not `import cjs from './index.js'`: importing a CommonJS module makes
// Node scan its source for export names (cjs-module-lexer), which on the bundled entry cost
// more than the rest of the import together (~15 ms and ~7 MiB on Node 20).
import { createRequire } from 'node:module'

const cjs = createRequire(import.meta.url)('./index.js')

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
