'use strict'
// The two errors a breaker throws. Real Error subclasses, defined once in this CommonJS
// module, which the ESM entry re-exports: `instanceof` holds whichever way they were loaded.

const CircuitState = Object.freeze({ CLOSED: 'CLOSED', OPEN: 'OPEN', HALF_OPEN: 'HALF_OPEN' })

class CircuitBreakerOpenError extends Error {
  /**
   * @param {string} circuit
   * @param {'OPEN'|'HALF_OPEN'} state
   * @param {number|null} [retryAfterMs] null: forced open; undefined: not known yet
   */
  constructor(circuit, state, retryAfterMs) {
    super(
      state === 'HALF_OPEN'
        ? `Circuit '${circuit}' is HALF_OPEN and its probe slots are taken: call rejected`
        : retryAfterMs === null
          ? `Circuit '${circuit}' is OPEN (forced): call rejected`
          : retryAfterMs === undefined
            ? `Circuit '${circuit}' is OPEN: call rejected`
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

/**
 * A retried call ran out of attempts (or of time for another one). `cause` is the last
 * attempt's error, `errors` every attempt's error in order.
 */
class RetryExhaustedError extends Error {
  /**
   * @param {number} attempts
   * @param {unknown[]} errors
   * @param {string} [why] what ended the retries, when it was not the attempt count
   */
  constructor(attempts, errors, why) {
    const last = errors[errors.length - 1]
    const lastMessage = last instanceof Error ? last.message : String(last)
    super(`${why || `gave up after ${attempts} attempt${attempts === 1 ? '' : 's'}`}; last error: ${lastMessage}`, { cause: last })
    this.attempts = attempts
    this.errors = errors
  }
}

// `name` on the prototype: `error.name === 'CircuitBreakerOpenError'` holds, and the
// constructor does one property write less on the rejection path.
Object.defineProperty(CircuitBreakerOpenError.prototype, 'name', { value: 'CircuitBreakerOpenError', writable: true, configurable: true })
Object.defineProperty(CircuitBreakerTimeoutError.prototype, 'name', { value: 'CircuitBreakerTimeoutError', writable: true, configurable: true })
Object.defineProperty(RetryExhaustedError.prototype, 'name', { value: 'RetryExhaustedError', writable: true, configurable: true })

/**
 * An open-circuit error, built without a stack trace. Capturing even the caller's single frame
 * (Error.captureStackTrace with a limit of 1) measured ~5x the cost of everything else on the
 * rejection path here, and a rejected call's useful context is the circuit, which the message
 * and `circuit` name. `stack` is the message line alone.
 */
function openError(circuit, state, retryAfterMs) {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  const e = new CircuitBreakerOpenError(circuit, state, retryAfterMs)
  Error.stackTraceLimit = limit
  return e
}

module.exports = { CircuitState, CircuitBreakerOpenError, CircuitBreakerTimeoutError, RetryExhaustedError, openError }
