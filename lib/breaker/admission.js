'use strict'
// The general path of `execute`: options, every state of the circuit, probes, sampling. The
// fast path (CircuitBreaker.execute in lib/breaker.js) hands over here whenever the call is
// not a plain one on a CLOSED circuit.
//
// `fb` is the fallback that answers the call's failure or rejection: the breaker's own for a
// call made through `execute`, none (null) for a retry attempt (the breaker's fallback answers
// once, after the last attempt, lib/retry.js), the invocation's for a Lambda wrapper
// (lib/lambda.js). It travels with the call (TimedCall.fb, the handlers' closures) to every
// place an outcome is settled.

const { monoNow } = require('../deadlines.js')
const S = require('../shared.js')
const { native, M_OPEN, M_HALF_OPEN, M_FORCED_OPEN, M_DISPOSED } = S
// The coarse clock (lib/shared.js), bound when the binary is loaded.
let CLOCK = null
let CLOCK_F64 = 0
S.whenLoaded(() => ({ CLOCK, CLOCK_F64 } = S))
const options = require('../options.js')

// A signal that never aborts: what an action gets when the breaker has no timeout. Made with
// the first breaker, not at import: it loads Node's AbortController and EventTarget (~0.2 ms).
let NEVER = null
function never() {
  return NEVER === null ? (NEVER = new AbortController().signal) : NEVER
}
// How far behind the coarse clock may be before anything relies on it being close.
const COARSE_LAG_MS = 50

const noop = () => {}

/**
 * The failure of an action whose result cannot even be looked at: `instanceof` or `then`
 * threw on it (a revoked Proxy, a prototype lookup that throws, a promise with a throwing
 * `then` or `constructor` getter, an object posing as a promise). `execute` never throws
 * synchronously: the call fails with that error like an action that threw. The try blocks
 * around those lookups cost nothing on the hot path (V8 only pays when something throws).
 */
function unusable(e) {
  return Promise.reject(e)
}

/** options.signal, checked: anything with `aborted` and `addEventListener` (polyfills too). */
function checkSignal(s) {
  if (s !== null && typeof s === 'object' && typeof s.aborted === 'boolean' && typeof s.addEventListener === 'function') return s
  throw new TypeError(`breakwater: execute(action, options): options.signal must be an AbortSignal, got ${options.show(s)}`)
}

/** Why `signal` was aborted (an AbortError where a polyfill leaves the reason unset). */
function reasonOf(signal) {
  return signal.reason !== undefined ? signal.reason : new DOMException('This operation was aborted', 'AbortError')
}

class Admission {
  /**
   * The internal entry point for calls that the breaker's own fallback must not answer: each
   * attempt of a retry (the fallback answers once, after the last, lib/retry.js) and a Lambda
   * invocation (its fallback gets the event and context, lib/lambda.js). Counted, timed and
   * decided exactly as `execute`; answered by `fb` (null: the call rejects with its error).
   */
  _executeWith(action, opts, fb) {
    return this._execute(action, opts, true, fb)
  }

  /** The general path: options, every state, timing. */
  _execute(action, opts, sampled, fb) {
    if (typeof action !== 'function') {
      let thenable = false
      try {
        thenable = action !== null && typeof action === 'object' && typeof action.then === 'function'
      } catch {
        // a throwing `then` getter or a revoked Proxy: not something we can run
      }
      if (!thenable) return Promise.reject(new TypeError(`breakwater: execute(action) needs a function or a promise, got ${options.show(action)}`))
    }
    let timeout = this._o.timeout
    let signal
    if (opts !== undefined) {
      if (opts === null || typeof opts !== 'object') return this._notRun(action, Promise.reject(new TypeError(`breakwater: execute(action, options): options must be an object, got ${options.show(opts)}`)))
      try {
        if (opts.bypass === true) return this._bypass(action, opts.signal)
        if (opts.timeout !== undefined) timeout = options.check('timeout', opts.timeout)
        if (opts.signal !== undefined) signal = checkSignal(opts.signal)
        // Cancelled before it started: not run, not counted (nothing happened), no fallback.
        if (signal !== undefined && signal.aborted) return this._notRun(action, Promise.reject(reasonOf(signal)))
        if (opts.retry !== undefined) return require('../retry.js').retryThrough(this, action, opts)
      } catch (e) {
        return this._notRun(action, Promise.reject(e))
      }
    }
    if (this._disposed) return this._notRun(action, Promise.reject(this._disposedError()))
    // The first calls after creation wait for the store's initial load (bounded by its
    // loadTimeoutMs; the link clears _loading when it is over, loaded or not).
    if (this._loading !== null) return this._loading.then(() => this._execute(action, opts, sampled, fb))
    let probe = 0
    if (this._enabled) {
      const mode = Atomics.load(this._C, this._ci)
      if (mode === M_OPEN || mode === M_FORCED_OPEN) {
        // The coarse clock can lag by a few ms, so close to nextAttemptAt the exact clock
        // decides. Parked (+inf), it defers to native code, which has the exact time.
        const c = CLOCK[CLOCK_F64]
        const at = this._CF[this._nextAt]
        if (mode === M_FORCED_OPEN || (c < at && (at - c > COARSE_LAG_MS || native.now() < at))) return this._notRun(action, this._reject(mode, true, fb))
        probe = this._acquire()
        if (probe < 0) return this._notRun(action, this._reject(Atomics.load(this._C, this._ci), false, fb))
      } else if (mode === M_HALF_OPEN) {
        probe = this._acquire()
        if (probe < 0) return this._notRun(action, this._reject(M_HALF_OPEN, false, fb))
      } else if (mode === M_DISPOSED) {
        return this._notRun(action, Promise.reject(this._disposedError()))
      }
    }
    // A probe asks the store for one of the fleet's probe permits first (bounded wait).
    if (probe > 0 && this._link !== null && this._link.gatesProbes) return this._gatedProbe(action, probe, timeout, signal, fb)
    const t0 = sampled || this._o.slowCallDurationMs > 0 ? monoNow() : 0
    if (signal !== undefined) return this._runSignal(action, probe, t0, timeout, signal, fb)
    return this._run(action, probe, t0, timeout, fb)
  }

  _gatedProbe(action, probe, timeout, signal, fb) {
    return this._link.acquireProbe().then((got) => {
      if (got) return signal === undefined ? this._run(action, probe, monoNow(), timeout, fb) : this._runSignal(action, probe, monoNow(), timeout, signal, fb)
      // Another instance of the fleet is probing: this call is rejected like any other.
      this._settleNative(3, probe)
      return this._notRun(action, this._reject(Atomics.load(this._C, this._ci), false, fb))
    })
  }

  _run(action, probe, t0, timeout, fb) {
    if (timeout > 0) return this._runTimed(action, probe, t0, timeout, fb)
    const gen = this._seqNow()
    let p
    try {
      p = typeof action === 'function' ? action(never()) : action
    } catch (e) {
      p = Promise.reject(e)
    }
    const settleErr = (e) => this._settleErr(e, probe, t0, false, gen, fb)
    try {
      if (!(p instanceof Promise)) p = Promise.resolve(p)
      return p.then((v) => this._settleOk(v, probe, t0, gen), settleErr)
    } catch (e) {
      // A failure like a throw: it also gives a probe's slot back.
      return unusable(e).then(undefined, settleErr)
    }
  }

  /**
   * The call was not run. If the action was an already-created promise, its outcome is no
   * longer anyone's: mark it handled, or its rejection would crash the process.
   */
  _notRun(action, result) {
    if (typeof action !== 'function') {
      try {
        action.then(undefined, noop)
      } catch {
        // a broken thenable: nothing to handle
      }
    }
    return result
  }

  _acquire() {
    const before = this._seqNow()
    const p = native.acquire(this._laneRec.id)
    this._sync(before)
    return p
  }

  /** Runs the action outside the breaker; a caller signal still applies (aborted: not run). */
  _bypass(action, s) {
    let signal = never()
    try {
      if (s !== undefined) signal = checkSignal(s)
    } catch (e) {
      return this._notRun(action, Promise.reject(e))
    }
    if (signal.aborted) return this._notRun(action, Promise.reject(reasonOf(signal)))
    try {
      return Promise.resolve(typeof action === 'function' ? action(signal) : action)
    } catch (e) {
      return Promise.reject(e)
    }
  }
}

module.exports = { Admission, never, noop, unusable, reasonOf }
