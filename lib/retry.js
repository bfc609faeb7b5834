'use strict'
// Retry with exponential backoff, on its own (`retry(action, options)`) or through a breaker
// (`breaker.execute(action, { retry })`, `breaker.wrap(fn, { retry })`).
//
// Through a breaker every attempt is an `execute`: the breaker counts it, times it out, and is
// asked before it runs, so an OPEN circuit ends the retries at once with its
// CircuitBreakerOpenError instead of a sleep into a known outage. The breaker's fallback
// answers once, after the retries end (attempts run with none, see _executeWith).

const { monoNow } = require('./deadlines.js')
const { RetryExhaustedError, CircuitBreakerOpenError, CircuitBreakerTimeoutError } = require('./errors.js')
const { num, show } = require('./options.js')

// A wait must end at least this long before a Lambda invocation's deadline: the next attempt
// and the handler's response need some time too.
const LAMBDA_MARGIN_MS = 100
const NEVER = new AbortController().signal
const KEYS = new Set(['retries', 'backoff', 'retryOn', 'onRetry', 'signal', 'context'])
const BACKOFF_KEYS = new Set(['initialMs', 'maxMs', 'multiplier', 'jitter'])
// Names other libraries use, so a migrated option fails with the way to say it here.
const HINTS = {
  maxRetries: 'use retries (retries after the first attempt)',
  maxAttempts: 'use retries (= maxAttempts - 1)',
  attempts: 'use retries (= attempts - 1)',
  delay: 'use backoff: { initialMs }',
  factor: 'use backoff: { multiplier }',
}

/**
 * Validates retry options; `label` prefixes option names in errors ('' alone, 'retry.' in execute).
 * @returns {{ retries: number, initialMs: number, maxMs: number, multiplier: number, jitter: string,
 *   retryOn: Function|null, onRetry: Function|null, signal: AbortSignal|undefined, context: object|undefined }}
 */
function resolveRetry(o, label) {
  if (o === null || typeof o !== 'object') throw new TypeError(`breakwater: option ${label || 'options'} must be an object, got ${show(o)}`)
  for (const k of Object.keys(o)) {
    if (o[k] !== undefined && !KEYS.has(k)) throw new TypeError(`breakwater: unknown option ${label}${k}` + (HINTS[k] ? `; ${HINTS[k]}` : ''))
  }
  const b = o.backoff === undefined ? {} : o.backoff
  if (b === null || typeof b !== 'object') throw new TypeError(`breakwater: option ${label}backoff must be an object, got ${show(b)}`)
  for (const k of Object.keys(b)) {
    if (b[k] !== undefined && !BACKOFF_KEYS.has(k)) throw new TypeError(`breakwater: unknown option ${label}backoff.${k}`)
  }
  const opt = (v, dflt) => (v === undefined ? dflt : v)
  const r = {
    retries: num(`${label}retries`, opt(o.retries, 3), { min: 0, max: 1000, int: true }),
    initialMs: num(`${label}backoff.initialMs`, opt(b.initialMs, 100), { unit: ' (ms)' }),
    maxMs: b.maxMs === undefined ? undefined : num(`${label}backoff.maxMs`, b.maxMs, { unit: ' (ms)' }),
    multiplier: num(`${label}backoff.multiplier`, opt(b.multiplier, 2), { min: 1, max: 1000 }),
    jitter: opt(b.jitter, 'full'),
    retryOn: fn(`${label}retryOn`, o.retryOn),
    onRetry: fn(`${label}onRetry`, o.onRetry),
    signal: o.signal,
    context: o.context,
  }
  // The default cap never sits below an initialMs given alone.
  if (r.maxMs === undefined) r.maxMs = Math.max(10_000, r.initialMs)
  if (r.maxMs < r.initialMs) throw new RangeError(`breakwater: option ${label}backoff.maxMs (${r.maxMs}) must be at least backoff.initialMs (${r.initialMs})`)
  if (r.jitter !== 'full' && r.jitter !== 'none') throw new TypeError(`breakwater: option ${label}backoff.jitter must be 'full' or 'none', got ${show(r.jitter)}`)
  if (r.signal !== undefined && !(r.signal instanceof AbortSignal)) throw new TypeError(`breakwater: option ${label}signal must be an AbortSignal, got ${show(r.signal)}`)
  if (r.context !== undefined && (r.context === null || typeof r.context.getRemainingTimeInMillis !== 'function')) {
    throw new TypeError(`breakwater: option ${label}context must be a Lambda context (with getRemainingTimeInMillis()), got ${show(r.context)}`)
  }
  return r
}

function fn(name, v) {
  if (v === undefined) return null
  if (typeof v !== 'function') throw new TypeError(`breakwater: option ${name} must be a function, got ${show(v)}`)
  return v
}

/** The wait before retry number `n` (1 = the first retry). Full jitter: uniform in [0, cap]. */
function delayFor(o, n) {
  const cap = Math.min(o.maxMs, o.initialMs * o.multiplier ** (n - 1))
  return o.jitter === 'full' ? Math.round(Math.random() * cap) : cap
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first (timer cleared). */
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal === undefined) {
      setTimeout(resolve, ms)
      return
    }
    if (signal.aborted) {
      reject(signal.reason)
      return
    }
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal.reason)
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/** `p`, or the signal's reason as soon as it aborts (p's own outcome is still handled). */
function raced(p, signal) {
  if (signal === undefined) return p
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort)
        resolve(v)
      },
      (e) => {
        signal.removeEventListener('abort', onAbort)
        reject(e)
      },
    )
  })
}

/**
 * The retry loop. `attempt(n)` runs attempt n (from 1). `isIgnored(e)` says whether an error is
 * one the breaker ignores. Rejects with an Ended: the final error and whether it was a failure
 * (a fallback may answer it) or not (ignored, cancelled: it passes through unchanged).
 */
async function loop(o, attempt, isIgnored, breaker) {
  const errors = []
  const deadline = o.context === undefined ? Infinity : monoNow() + Number(o.context.getRemainingTimeInMillis())
  for (let n = 1; ; n++) {
    if (o.signal !== undefined && o.signal.aborted) throw new Ended(o.signal.reason, false)
    let error
    try {
      return await attempt(n)
    } catch (e) {
      error = e
    }
    if (o.signal !== undefined && o.signal.aborted) throw new Ended(o.signal.reason, false)
    // An open circuit (this breaker's or one inside the action): retrying cannot help before it
    // lets a probe through.
    if (error instanceof CircuitBreakerOpenError) throw new Ended(error, true)
    if (isIgnored(error)) throw new Ended(error, false)
    if (o.retryOn !== null && !o.retryOn(error)) throw new Ended(error, true)
    errors.push(error)
    if (n > o.retries) throw new Ended(new RetryExhaustedError(n, errors), true)
    // The failure may have opened the circuit: then the next attempt goes now, and is rejected.
    if (breaker !== null && breaker.state === 'OPEN') continue
    const delayMs = delayFor(o, n)
    if (monoNow() + delayMs > deadline - LAMBDA_MARGIN_MS) {
      throw new Ended(new RetryExhaustedError(n, errors, `gave up after ${n} attempt${n === 1 ? '' : 's'}: the Lambda invocation has no time left for another`), true)
    }
    if (o.onRetry !== null) o.onRetry({ attempt: n, error, delayMs })
    try {
      await sleep(delayMs, o.signal)
    } catch (reason) {
      throw new Ended(reason, false)
    }
  }
}

class Ended {
  constructor(error, failure) {
    this.error = error
    this.failure = failure
  }
}

/**
 * Retries `action(signal, attempt)` with exponential backoff.
 * @template T
 * @param {(signal: AbortSignal, attempt: number) => T | PromiseLike<T>} action
 * @param {import('../index').RetryOptions} [options]
 * @returns {Promise<T>}
 */
async function retry(action, options = {}) {
  if (typeof action !== 'function') throw new TypeError(`breakwater: retry(action) needs a function, got ${show(action)}`)
  const o = resolveRetry(options, '')
  const signal = o.signal === undefined ? NEVER : o.signal
  const attempt = (n) => raced(Promise.resolve().then(() => action(signal, n)), o.signal)
  try {
    return await loop(o, attempt, () => false, null)
  } catch (e) {
    throw e instanceof Ended ? e.error : e
  }
}

/**
 * `breaker.execute(action, { retry, ...rest })`: every attempt through the breaker (with `rest`,
 * e.g. timeout and signal), the breaker's fallback once at the end. Throws synchronously on bad
 * options (execute turns that into a rejection).
 */
function retryThrough(breaker, action, opts) {
  if (typeof action !== 'function') throw new TypeError(`breakwater: execute(action, { retry }) needs a function action (a promise cannot be run again), got ${show(action)}`)
  const given = opts.retry
  if (given === null || typeof given !== 'object') throw new TypeError(`breakwater: option retry must be an object ({ retries, backoff, ... }), got ${show(given)}`)
  const o = resolveRetry({ signal: opts.signal, ...given }, 'retry.')
  // The caller's signal reaches every attempt, whichever of the two places it was given in.
  const attemptOpts = { ...opts, retry: undefined, signal: o.signal }
  const attempt = (n) => raced(breaker._executeWith((signal) => action(signal, n), attemptOpts, null), o.signal)
  return loop(o, attempt, (e) => isIgnoredBy(breaker, e), breaker).catch((e) => {
    if (!(e instanceof Ended)) throw e
    if (!e.failure) throw e.error
    return breaker._fallbackOr(e.error, breaker._fallback)
  })
}

/** Whether `breaker` ignores `error` (its isFailure returned false; timeouts never are). */
function isIgnoredBy(breaker, error) {
  if (breaker._isFailure === null || error instanceof CircuitBreakerTimeoutError) return false
  try {
    return breaker._isFailure(error) === false
  } catch {
    return false // the breaker counted it as a failure (and logged the throw)
  }
}

module.exports = { retry, retryThrough, resolveRetry, delayFor, LAMBDA_MARGIN_MS }
