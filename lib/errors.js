'use strict'
// The two errors a breaker throws. Real Error subclasses, defined once in this CommonJS
// module, which the ESM entry re-exports: `instanceof` holds whichever way they were loaded.

const CircuitState = Object.freeze({ CLOSED: 'CLOSED', OPEN: 'OPEN', HALF_OPEN: 'HALF_OPEN' })

class CircuitBreakerOpenError extends Error {
  /**
   * @param {string} circuit
   * @param {'OPEN'|'HALF_OPEN'} state
   * @param {number|null} retryAfterMs
   */
  constructor(circuit, state, retryAfterMs) {
    super(
      state === 'HALF_OPEN'
        ? `Circuit '${circuit}' is HALF_OPEN and its probe slots are taken: call rejected`
        : retryAfterMs === null
          ? `Circuit '${circuit}' is OPEN (forced): call rejected`
          : `Circuit '${circuit}' is OPEN: call rejected; retry after ${retryAfterMs} ms`,
    )
    this.circuit = circuit
    this.state = state
    this.retryAfterMs = retryAfterMs
  }
}

class CircuitBreakerTimeoutError extends Error {
  /**
   * @param {string} circuit
   * @param {number} timeoutMs
   * @param {string} state
   */
  constructor(circuit, timeoutMs, state) {
    super(`Circuit '${circuit}': call timed out after ${timeoutMs} ms`)
    this.circuit = circuit
    this.state = state
    this.timeoutMs = timeoutMs
  }
}

// `name` on the prototype: `error.name === 'CircuitBreakerOpenError'` holds, and the
// constructor does one property write less on the rejection path.
Object.defineProperty(CircuitBreakerOpenError.prototype, 'name', { value: 'CircuitBreakerOpenError', writable: true, configurable: true })
Object.defineProperty(CircuitBreakerTimeoutError.prototype, 'name', { value: 'CircuitBreakerTimeoutError', writable: true, configurable: true })

/**
 * An open-circuit error whose stack holds the caller's frame and nothing of ours. Capturing
 * the usual 10 frames is most of what a rejection costs; the user needs the call site only.
 * @param {Function} above the function whose caller is the call site
 */
function openError(circuit, state, retryAfterMs, above) {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  const e = new CircuitBreakerOpenError(circuit, state, retryAfterMs)
  Error.stackTraceLimit = 1
  Error.captureStackTrace(e, above)
  Error.stackTraceLimit = limit
  return e
}

module.exports = { CircuitState, CircuitBreakerOpenError, CircuitBreakerTimeoutError, openError }
