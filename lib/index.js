'use strict'
// breakwater: a circuit breaker for Node.js with a Rust core.
// This CommonJS module is the one definition of every class; esm.cjs re-exports it, so
// ESM and CJS consumers share the same classes and the same registry. The package's entry
// (../index.js) is this module and every module it loads at import, bundled into one file by
// scripts/bundle.js (see there why).

const { CircuitBreaker } = require('./breaker.js')
const { CircuitState, CircuitBreakerOpenError, CircuitBreakerTimeoutError, RetryExhaustedError } = require('./errors.js')
const { metricsSnapshot, ...registry } = require('./registry.js')
const { configure } = require('./options.js')
const metrics = require('./metrics/index.js')

// Stores load their modules (node:net, node:tls, node:fs) on first use: a Lambda function
// without a store does not pay for them at cold start.
/** @param {import('./index').FileStoreOptions} options */
function fileStore(options) {
  return require('./store/file.js').fileStore(options)
}
/** @param {import('./index').RedisStoreOptions} options */
function redisStore(options) {
  return require('./store/redis.js').redisStore(options)
}
/** @param {import('./index').DynamoDbStoreOptions} options */
function dynamoDbStore(options) {
  return require('./store/dynamodb.js').dynamoDbStore(options)
}

// Retry and the Lambda wrapper load on first use too (a breaker alone needs neither).
/** @type {typeof import('./index').retry} */
function retry(action, options) {
  return require('./retry.js').retry(action, options)
}
/** @type {typeof import('./index').withCircuitBreaker} */
function withCircuitBreaker(handler, options) {
  return require('./lambda.js').withCircuitBreaker(handler, options)
}
const { presets } = require('./presets.js')

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
