'use strict'
// `breakwater/decorators`: @circuitBreaker and @retry for class methods, as TypeScript 5
// standard (TC39) decorators -- not `experimentalDecorators`, whose (target, key, descriptor)
// calls are refused with a TypeError that says so.
//
// One breaker per decorated method per class, made when the class is defined (a bad option
// fails at import, not at the first call), shared by every instance; `this` is the instance.
//
// Stacking (decorators apply bottom-up, so the one written first is the outer one):
//   @retry(o) @circuitBreaker(b)  each attempt is a breaker call: execute(fn, { retry: o }),
//                                 so an OPEN circuit ends the retries at once and the
//                                 breaker's fallback answers once, after the last attempt.
//   @circuitBreaker(b) @retry(o)  the whole retried call is one breaker call: it counts once,
//                                 the breaker's timeout covers every attempt and wait.

const { CircuitBreaker } = require('./breaker.js')
const { retry: retryCall, resolveRetry } = require('./retry.js')
const { show } = require('./options.js')

// On a method replaced by @circuitBreaker: its breaker and the method it guards, so a @retry
// written above it can retry through the breaker.
const GUARDED = Symbol('breakwater.guarded')

function checkContext(name, context) {
  if (context === null || typeof context !== 'object' || context.kind !== 'method') {
    const legacy = typeof context === 'string' || typeof context === 'symbol'
    throw new TypeError(`breakwater: @${name} decorates class methods with TypeScript 5 standard decorators` +
      (legacy ? '; it was called as a legacy decorator: remove experimentalDecorators from tsconfig.json' : `, got a ${context && context.kind}`))
  }
}

/**
 * @param {string | object | CircuitBreaker} nameOrOptions a circuit name, breaker options, or a breaker
 */
function circuitBreaker(nameOrOptions) {
  const breaker = nameOrOptions instanceof CircuitBreaker
    ? nameOrOptions
    : typeof nameOrOptions === 'string'
      ? new CircuitBreaker({ name: nameOrOptions })
      : nameOrOptions !== null && typeof nameOrOptions === 'object'
        ? new CircuitBreaker(nameOrOptions)
        : (() => { throw new TypeError(`breakwater: @circuitBreaker(nameOrOptions) needs a circuit name, breaker options or a CircuitBreaker, got ${show(nameOrOptions)}`) })()
  return function decorate(method, context) {
    checkContext('circuitBreaker', context)
    function guarded(...args) {
      return breaker.execute(() => method.apply(this, args))
    }
    guarded[GUARDED] = { breaker, method }
    return guarded
  }
}

/**
 * @param {object} [options] retry's options (retries, backoff, retryOn, onRetry)
 */
function retry(options = {}) {
  resolveRetry(options, '') // a bad option fails when the class is defined
  return function decorate(method, context) {
    checkContext('retry', context)
    const below = method[GUARDED]
    if (below !== undefined) {
      const { breaker, method: original } = below
      return function retriedThroughBreaker(...args) {
        return breaker.execute(() => original.apply(this, args), { retry: options })
      }
    }
    return function retried(...args) {
      return retryCall(() => method.apply(this, args), options)
    }
  }
}

module.exports = { circuitBreaker, retry }
