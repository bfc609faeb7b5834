'use strict'
// breakwater: a circuit breaker for Node.js with a Rust core.
// This CommonJS module is the one definition of every class; index.mjs re-exports it, so
// ESM and CJS consumers share the same classes and the same registry.

const { CircuitBreaker } = require('./lib/breaker.js')
const { CircuitState, CircuitBreakerOpenError, CircuitBreakerTimeoutError } = require('./lib/errors.js')
const { metricsSnapshot, ...registry } = require('./lib/registry.js')
const { configure } = require('./lib/options.js')
const metrics = require('./lib/metrics/index.js')

module.exports = {
  CircuitBreaker,
  CircuitState,
  CircuitBreakerOpenError,
  CircuitBreakerTimeoutError,
  configure,
  ...registry,
  ...metrics,
}
