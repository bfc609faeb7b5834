'use strict'
// breakwater: a circuit breaker for Node.js with a Rust core.
// This CommonJS module is the one definition of every class; index.mjs re-exports it, so
// ESM and CJS consumers share the same classes and the same registry.

const { CircuitBreaker } = require('./lib/breaker.js')
const { CircuitState, CircuitBreakerOpenError, CircuitBreakerTimeoutError, RetryExhaustedError } = require('./lib/errors.js')
const { metricsSnapshot, ...registry } = require('./lib/registry.js')
const { configure } = require('./lib/options.js')
const metrics = require('./lib/metrics/index.js')

// Stores load their modules (node:net, node:tls, node:fs) on first use: a Lambda function
// without a store does not pay for them at cold start.
/** @param {import('./index').FileStoreOptions} options */
function fileStore(options) {
  return require('./lib/store/file.js').fileStore(options)
}
/** @param {import('./index').RedisStoreOptions} options */
function redisStore(options) {
  return require('./lib/store/redis.js').redisStore(options)
}
/** @param {import('./index').DynamoDbStoreOptions} options */
function dynamoDbStore(options) {
  return require('./lib/store/dynamodb.js').dynamoDbStore(options)
}

// Retry and the Lambda wrapper load on first use too (a breaker alone needs neither).
/** @type {typeof import('./index').retry} */
function retry(action, options) {
  return require('./lib/retry.js').retry(action, options)
}
/** @type {typeof import('./index').withCircuitBreaker} */
function withCircuitBreaker(handler, options) {
  return require('./lib/lambda.js').withCircuitBreaker(handler, options)
}
const { presets } = require('./lib/presets.js')

module.exports = {
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
  ...registry,
  ...metrics,
}
