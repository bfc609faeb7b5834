'use strict'
// A view of a breaker that answers with another fallback (or none). Retry needs every attempt
// counted and decided by the breaker exactly as `execute` does, but the breaker's fallback
// must answer once, after the last attempt; the Lambda wrappers need the fallback to get the
// invocation's event and context. A breaker's fallback belongs to the instance, so such a
// call runs through a view: a Proxy whose reads and writes go to the breaker itself (its
// lane, counters, listeners, store link), except for the members below.

const { Deadlines } = require('./deadlines.js')

/**
 * @param {import('./breaker.js').CircuitBreaker} breaker
 * @param {((error: unknown) => unknown) | null} fallback what answers a failure or rejection of
 *   a call made through the view; null: the call rejects with the error
 */
function viewOf(breaker, fallback) {
  const queues = new Map()
  let view = null
  const own = {
    _fallback: fallback,
    _fbWantsError: fallback !== null,
    // Transitions this call causes are delivered (and logged once) by the breaker itself: it
    // is the instance the per-thread registry knows.
    _sync: (before) => breaker._sync(before),
    // A deadline queue calls back the object that made it, so a call made through the view
    // times out through the view (with the view's fallback), never through the breaker's queue.
    _dl: null,
    _deadlinesFor: (timeoutMs) => {
      let q = queues.get(timeoutMs)
      if (q === undefined) queues.set(timeoutMs, (q = new Deadlines((call) => view._expire(call))))
      return q
    },
  }
  view = new Proxy(breaker, {
    get: (target, key, receiver) => (Object.hasOwn(own, key) ? own[key] : Reflect.get(target, key, receiver)),
    set: (target, key, value) => {
      target[key] = value
      return true
    },
  })
  return view
}

module.exports = { viewOf }
