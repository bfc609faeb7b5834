'use strict'
// Presets: options for the dependencies users wrap most, as plain frozen objects to spread
// and override: `new CircuitBreaker({ ...presets.llm, name: 'openai', timeout: 60_000 })`.
// (The preset for third-party HTTP APIs is createExternalServiceCircuitBreaker, lib/registry.js.)
// Frozen, so one module changing `presets.llm.timeout` cannot change every other breaker.

/** The HTTP status an error carries, from the clients users have (fetch wrappers, SDKs). */
function httpStatusOf(error) {
  if (error === null || typeof error !== 'object') return undefined
  const s = error.status ?? error.statusCode ?? error.response?.status ?? error.$metadata?.httpStatusCode
  return typeof s === 'number' ? s : undefined
}

/**
 * A client error is the request's fault, not the service's: 400 (a prompt too long), 401, 403,
 * 404, 422 say nothing about the service's health and must not open its circuit. 408 (timeout),
 * 409 (conflict, often transient), 425 and 429 (rate limited: the service asks to back off) do.
 * Errors without a status (network errors, timeouts) are failures.
 */
function isHttpFailure(error) {
  const s = httpStatusOf(error)
  return s === undefined || s < 400 || s >= 500 || s === 408 || s === 409 || s === 425 || s === 429
}

/**
 * SQLSTATE classes that are the query's fault, not the database's: 22 (data exception), 23
 * (integrity constraint violation: a duplicate key), 42 (syntax error or access rule). Read
 * from `code` (node-postgres) or `sqlState` (mysql2). Everything else -- connection refused,
 * too many connections (53300), admin shutdown (57P01), timeouts -- is a failure.
 */
function isDatabaseFailure(error) {
  if (error === null || typeof error !== 'object') return true
  const state = typeof error.sqlState === 'string' ? error.sqlState : typeof error.code === 'string' && /^[0-9A-Z]{5}$/.test(error.code) ? error.code : ''
  return !/^(22|23|42)/.test(state)
}

const freeze = (o) => Object.freeze({ ...o, ...(o.window ? { window: Object.freeze({ ...o.window }) } : {}) })

const presets = Object.freeze({
  /**
   * LLM APIs (OpenAI, Anthropic, Bedrock): completions take tens of seconds, so a long timeout;
   * a provider in trouble gets slow before it fails, so 80% of calls above 60 s opens too.
   * Traffic is low and expensive: 5 calls decide, over a 2-minute window.
   */
  llm: freeze({
    failureThreshold: 0.5,
    minimumRequests: 5,
    timeout: 120_000,
    resetTimeout: 30_000,
    slowCallDurationMs: 60_000,
    slowCallRateThreshold: 0.8,
    window: { type: 'time', durationMs: 120_000, buckets: 12 },
    isFailure: isHttpFailure,
  }),
  /**
   * A database: queries should take milliseconds, a failover takes ~10-30 s. Five failures in
   * a row (connection refused) open it without waiting for 20 calls; constraint violations
   * and syntax errors are not failures.
   */
  database: freeze({
    failureThreshold: 0.5,
    minimumRequests: 20,
    consecutiveFailures: 5,
    timeout: 10_000,
    resetTimeout: 15_000,
    isFailure: isDatabaseFailure,
  }),
  /**
   * A cache (Redis, Memcached): a slow cache is worse than a miss, so a short timeout and a
   * short open period; a 10 s window follows high traffic closely. Give it a fallback that
   * answers "miss" (`fallback: () => undefined`).
   */
  cache: freeze({
    failureThreshold: 0.5,
    minimumRequests: 20,
    consecutiveFailures: 5,
    timeout: 250,
    resetTimeout: 5_000,
    window: { type: 'time', durationMs: 10_000, buckets: 10 },
  }),
})

module.exports = { presets, isHttpFailure, isDatabaseFailure }
