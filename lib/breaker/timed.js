'use strict'
// Calls with a deadline (the `timeout` option, 30 s by default) and calls with the caller's
// AbortSignal (`options.signal`). Such a call must be able to reject at its deadline (or the
// caller's abort) even if the action's promise never settles, so it returns a promise of its
// own, settled by whichever comes first; the deadline queues (lib/deadlines.js) time out the
// overdue ones, one shared timer per timeout value for every breaker of the thread.

const { CircuitBreakerTimeoutError } = require('../errors.js')
const { deadlinesFor, monoNow } = require('../deadlines.js')
const { never, noop, unusable, reasonOf } = require('./admission.js')
const S = require('../shared.js')

// `new Promise(exec)` with a shared executor: no closure per call.
let R = null
let J = null
function exec(resolve, reject) {
  R = resolve
  J = reject
}

class TimedCall {
  constructor(owner, queue, probe, t0, timeoutMs, deadline, gen, fb) {
    // the breaker (its _expire is called if the deadline passes first)
    this.owner = owner
    this.queue = queue
    this.probe = probe
    this.t0 = t0
    this.timeoutMs = timeoutMs
    this.deadline = deadline
    // the circuit's generation when the call was let through (see _useGeneration)
    this.gen = gen
    this.done = false
    this.ctrl = null
    // Removes the listener on the caller's signal (options.signal), if there is one.
    this.off = null
    // the fallback that answers its failure (see lib/breaker/admission.js)
    this.fb = fb
    this.resolve = R
    this.reject = J
  }

  /**
   * Marks the call settled, and returns its resolve function after letting go of what it holds
   * (read `reject` before, if needed):
   * a settled call can wait in its queue until the next call of its timeout value (or its
   * deadline, behind a call that hangs), and must not keep the caller's promise, the action's
   * AbortController, its fallback or its breaker (disposed meanwhile, perhaps) alive that long.
   */
  finish() {
    this.done = true
    this.queue.settled()
    this.owner = null
    this.fb = null
    const resolve = this.resolve
    this.resolve = noop
    this.reject = noop
    this.ctrl = null
    return resolve
  }
}

// The deadline queue of a call with a signal but no timeout.
const NO_DEADLINE = { settled: noop }

class Timed {
  /** A call with a deadline; one shared timer per timeout value. */
  _runTimed(action, probe, t0, timeoutMs, fb) {
    // An exact clock, not the coarse one: a starved clock thread must never make a call time
    // out early. A monotonic one (see lib/deadlines.js), not Date.now(): a step of the wall
    // clock must move no deadline.
    const now = monoNow()
    const d = new Promise(exec)
    const q = this._dl !== null && timeoutMs === this._dl.timeoutMs ? this._dl : deadlinesFor(timeoutMs)
    // the generation read plainly, as the fast path reads it (see lib/breaker.js)
    const call = new TimedCall(this, q, probe, t0, timeoutMs, now + timeoutMs, this._C[this._ci + S.SEQ], fb)
    q.add(call)
    let p
    try {
      // The signal costs an AbortController; only actions that declare a parameter get one.
      p = typeof action === 'function'
        ? action(action.length > 0 ? (call.ctrl = new AbortController()).signal : never())
        : action
    } catch (e) {
      p = Promise.reject(e)
    }
    try {
      if (!(p instanceof Promise)) p = Promise.resolve(p)
      p.then(
        (v) => this._timedOk(call, v),
        (e) => this._timedErr(call, e),
      )
    } catch (e) {
      // A failure like a throw, settled before its deadline can count it as a timeout.
      unusable(e).then(undefined, (x) => this._timedErr(call, x))
    }
    return d
  }

  /**
   * A call with the caller's AbortSignal (options.signal): whichever comes first of the
   * action's outcome, its deadline (if any) and the caller's abort settles it. The action
   * always gets a live signal of its own, aborted by either of the last two.
   */
  _runSignal(action, probe, t0, timeoutMs, signal, fb) {
    if (signal.aborted) {
      // Aborted while a probe waited for the store's permit: cancelled, the slot given back.
      this._countIgnored(probe)
      return this._notRun(action, Promise.reject(reasonOf(signal)))
    }
    const d = new Promise(exec)
    const q = timeoutMs === 0 ? NO_DEADLINE : this._dl !== null && timeoutMs === this._dl.timeoutMs ? this._dl : deadlinesFor(timeoutMs)
    const call = new TimedCall(this, q, probe, t0, timeoutMs, monoNow() + timeoutMs, undefined, fb)
    const ctrl = (call.ctrl = new AbortController())
    const cancel = () => this._cancel(call, reasonOf(signal))
    signal.addEventListener('abort', cancel)
    // A long-lived caller signal (a server's shutdown signal) must not collect one listener
    // per call: each call removes its own as soon as it is settled, whichever way.
    const off = (call.off = () => signal.removeEventListener('abort', cancel))
    if (q !== NO_DEADLINE) q.add(call)
    let p
    try {
      p = typeof action === 'function' ? action(ctrl.signal) : action
    } catch (e) {
      p = Promise.reject(e)
    }
    const err = (e) => {
      off()
      this._timedErr(call, e)
    }
    try {
      if (!(p instanceof Promise)) p = Promise.resolve(p)
      p.then((v) => {
        off()
        this._timedOk(call, v)
      }, err)
    } catch (e) {
      unusable(e).then(undefined, err)
    }
    return d
  }

  /** The caller aborted: the call rejects now with the reason; neither success nor failure. */
  _cancel(call, reason) {
    if (call.done) return
    const ctrl = call.ctrl
    const reject = call.reject
    call.finish()
    call.off()
    ctrl.abort(reason)
    this._countIgnored(call.probe)
    reject(reason)
  }

  _timedOk(call, v) {
    if (call.done) return // timed out already: the late result is ignored
    const reject = call.reject
    const resolve = call.finish()
    if (call.probe === 0 && call.t0 === 0 && this._fast && call.gen === this._g && this._ok !== null) resolve(this._ok(v))
    else {
      try {
        resolve(this._settleOk(v, call.probe, call.t0, call.gen))
      } catch (e) {
        reject(e)
      }
    }
  }

  _timedErr(call, e) {
    if (call.done) return
    const reject = call.reject
    const fb = call.fb
    const resolve = call.finish()
    try {
      resolve(this._settleErr(e, call.probe, call.t0, false, call.gen, fb))
    } catch (x) {
      reject(x)
    }
  }

  _expire(call) {
    if (call.off !== null) call.off()
    const err = new CircuitBreakerTimeoutError(this.name, call.timeoutMs, this._lastState)
    if (call.ctrl !== null) call.ctrl.abort(err)
    if (this._listeners !== null) this._emit('timeout', { name: this.name, timeoutMs: call.timeoutMs })
    try {
      call.resolve(this._settleErr(err, call.probe, call.t0, true, call.gen, call.fb))
    } catch (x) {
      call.reject(x)
    }
  }
}

module.exports = { Timed }
