'use strict'
// `breakwater/middy`: a Middy middleware that guards the handler with a breaker.
//
// Middy splits an invocation into before / handler / after / onError, while a breaker runs
// one action. So `before` starts the breaker call with an action that waits for the
// handler's outcome: if the breaker rejects (OPEN), the action never starts and `before`
// answers at once with the fallback's response (Middy's early response: the handler does not
// run); otherwise `after` / `onError` settle that action with the handler's response or error,
// and the breaker records it. Use it first (outermost), so it guards everything after it.

const { guardOf, invoke, publish } = require('./lambda.js')

const noop = () => {}

/**
 * @param {object} options breaker options or { breaker }, plus fallback(error, event, context)
 *   and emitEmf (true, or emitEmf's options: publish metrics after each invocation)
 */
function circuitBreakerMiddleware(options) {
  const guard = guardOf(options, 'circuitBreakerMiddleware(options)')
  // The breaker call of each request whose handler is allowed to run.
  const calls = new WeakMap()

  const before = async (request) => {
    const call = { resolve: null, reject: null, result: null }
    let started = false
    let markStarted
    const began = new Promise((resolve) => (markStarted = resolve))
    call.result = invoke(guard, () => new Promise((resolve, reject) => {
      started = true
      markStarted()
      call.resolve = resolve
      call.reject = reject
    }), request.event, request.context)
    // A breaker call that was admitted starts its action at once, or (a store's first load)
    // after a bounded wait; one that was rejected settles without starting it.
    call.result.catch(noop)
    await Promise.race([call.result.then(noop, noop), began])
    if (started) {
      calls.set(request, call)
      return undefined
    }
    try {
      const response = await call.result
      // Middy >= 6 reads an early response from here (undefined included); older ones from
      // the return value.
      request.earlyResponse = response
      return response
    } finally {
      publish(guard)
    }
  }

  /** Settles the request's breaker call with the handler's outcome, and answers with its result. */
  const finish = async (request, settle) => {
    const call = calls.get(request)
    if (call === undefined) return
    calls.delete(request)
    settle(call)
    try {
      // The handler's response or the fallback's; or, if the breaker timed the call out
      // meanwhile, the fallback's (or the timeout error, which Middy hands to onError).
      request.response = await call.result
    } finally {
      publish(guard)
    }
  }
  const after = (request) => finish(request, (call) => call.resolve(request.response))
  // Rejects with the same error (no fallback, or an ignored one), or with what the fallback threw.
  const onError = (request) => finish(request, (call) => call.reject(request.error)).catch((e) => {
    request.error = e
  })

  return { name: 'breakwater', before, after, onError, breaker: guard.breaker }
}

module.exports = { circuitBreakerMiddleware }
