'use strict'
// Guarding a Lambda handler with a breaker: `withCircuitBreaker(handler, options)` here, and the
// Middy middleware (lib/middy.js) on the same pieces. The handler's outcome is the call's: a
// handler that throws is a failure (unless the breaker's isFailure says otherwise) and its
// error propagates, or `fallback(error, event, context)` answers with the handler's response.

const { CircuitBreaker } = require('./breaker.js')
const { show } = require('./options.js')

/**
 * The breaker and the wrapper's own options: `{ breaker }` (an existing one) or breaker options,
 * plus `fallback(error, event, context)` and `emitEmf` (true or emitEmf's options).
 */
function guardOf(options, where) {
  if (options === null || typeof options !== 'object') throw new TypeError(`breakwater: ${where}: options must be breaker options or { breaker }, got ${show(options)}`)
  const { breaker, fallback, emitEmf, ...rest } = options
  if (fallback !== undefined && typeof fallback !== 'function') throw new TypeError(`breakwater: ${where}: option fallback must be a function (error, event, context) => response, got ${show(fallback)}`)
  if (emitEmf !== undefined && typeof emitEmf !== 'boolean' && (emitEmf === null || typeof emitEmf !== 'object')) {
    throw new TypeError(`breakwater: ${where}: option emitEmf must be true or emitEmf's options ({ namespace, ... }), got ${show(emitEmf)}`)
  }
  let b
  if (breaker !== undefined) {
    if (!(breaker instanceof CircuitBreaker)) throw new TypeError(`breakwater: ${where}: option breaker must be a CircuitBreaker, got ${show(breaker)}`)
    const extra = Object.keys(rest).filter((k) => rest[k] !== undefined)
    if (extra.length > 0) throw new TypeError(`breakwater: ${where}: give either { breaker } or breaker options, not both (got ${extra.join(', ')} with breaker)`)
    b = breaker
  } else {
    b = new CircuitBreaker(rest)
  }
  return { breaker: b, fallback: fallback || null, emf: emitEmf === true ? {} : emitEmf || null }
}

/**
 * Runs `action` through the guard's breaker; failures and rejections are answered by the
 * guard's fallback with this invocation's event and context (the breaker's own fallback, if
 * the guard has none).
 */
function invoke(guard, action, event, context) {
  if (guard.fallback === null) return guard.breaker.execute(action)
  const fallback = guard.fallback
  return guard.breaker._executeWith(action, undefined, (error) => fallback(error, event, context))
}

/** Publishes the metrics after an invocation, if asked; a metrics problem never fails it. */
function publish(guard) {
  if (guard.emf === null) return
  try {
    require('./metrics/index.js').emitEmf(guard.emf)
  } catch (e) {
    guard.breaker._log('error', `breakwater: emitEmf after an invocation failed: ${e && e.message}`)
  }
}

/**
 * A handler `(event, context) => Promise<response>` that runs `handler` through a breaker.
 * @param {(event: any, context: any) => any} handler an async handler (no callback)
 * @param {object} options breaker options or { breaker }, plus fallback and emitEmf
 */
function withCircuitBreaker(handler, options) {
  if (typeof handler !== 'function') throw new TypeError(`breakwater: withCircuitBreaker(handler, options): handler must be a function, got ${show(handler)}`)
  const guard = guardOf(options, 'withCircuitBreaker(handler, options)')
  const guarded = async (event, context) => {
    try {
      return await invoke(guard, () => handler(event, context), event, context)
    } finally {
      publish(guard)
    }
  }
  guarded.breaker = guard.breaker
  return guarded
}

module.exports = { withCircuitBreaker, guardOf, invoke, publish }
