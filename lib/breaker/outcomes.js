'use strict'
// What a call's outcome does: a success or failure counted in the lane when it certainly
// decides nothing (the failure budget), or reported to native code when it may; an ignored
// error; the fallback's answer; a rejected call's error; latency samples and the shouldTrip
// predicate.
//
// `fb` (in _settleErr, _fallbackOr, _reject) is the fallback that answers this call: the
// breaker's own, or another one for internal calls (see lib/breaker/admission.js).

const { monoNow } = require('../deadlines.js')
const S = require('../shared.js')
const { native, M_CLOSED, M_HALF_OPEN, M_FORCED_OPEN } = S
// The coarse clock (lib/shared.js), bound when the binary is loaded.
let CLOCK = null
let CLOCK_F64 = 0
S.whenLoaded(() => ({ CLOCK, CLOCK_F64 } = S))
const { openError } = require('../errors.js')

/**
 * Rejects whoever adopts it with `error`, without a `throw`. Returned from a `then` handler,
 * it passes a failure on to the caller: throwing there costs ~0.6 us in V8 (exception
 * machinery), and `Promise.reject()` pays Node's unhandled-rejection bookkeeping; adopting a
 * thenable costs one microtask. The caller sees the very same error object.
 */
class Rethrow {
  constructor(error) {
    this.error = error
  }

  then(resolve, reject) {
    reject(this.error)
  }
}

class Outcomes {
  _settleOk(v, probe, t0, gen) {
    let slow = false
    if (t0 !== 0) {
      const ms = monoNow() - t0
      slow = this._o.slowCallDurationMs > 0 && ms > this._o.slowCallDurationMs
      this._sample(ms)
    }
    if (probe !== 0 || slow || this._shouldTrip !== null || !this._enabled || Atomics.load(this._C, this._ci) !== M_CLOSED || gen !== this._g || this._seqNow() !== gen) {
      this._settleNative(slow ? 4 : 0, probe, gen)
      if (probe !== 0 && this._link !== null) this._link.probeDone()
    } else {
      if (this._ok === null) this._makeHandlers(this._g)
      this._ok(v)
    }
    if (this._listeners !== null) this._emit('success', { name: this.name })
    if (this._shouldTrip !== null && this._enabled) this._checkPredicate()
    return v
  }

  /**
   * The value of `fb` (the fallback answering this call), or (without one) a Rethrow of the
   * error: what the call resolves to. A fallback that throws throws here; the caller makes that the call's result.
   */
  _settleErr(e, probe, t0, isTimeout, gen, fb) {
    if (!isTimeout && this._isFailure !== null) {
      let failure = true
      try {
        failure = this._isFailure(e) !== false
      } catch (inner) {
        this._log('error', `breakwater: isFailure of '${this.name}' threw (${inner && inner.message}); counting the error as a failure`)
      }
      if (!failure) {
        // Ignored: neither success nor failure, no fallback, frees its probe slot.
        this._countIgnored(probe)
        return new Rethrow(e)
      }
    }
    let slow = false
    if (t0 !== 0) {
      const ms = monoNow() - t0
      slow = this._o.slowCallDurationMs > 0 && ms > this._o.slowCallDurationMs
      this._sample(ms)
    }
    if (probe !== 0 || slow || isTimeout || this._seqNow() !== gen || !this._countFailure()) {
      this._settleNative(1 | (slow ? 4 : 0) | (isTimeout ? 8 : 0), probe, gen)
      if (probe !== 0 && this._link !== null) this._link.probeDone()
    }
    if (this._listeners !== null) this._emit('failure', { name: this.name, error: e, timeout: isTimeout })
    if (this._shouldTrip !== null && this._enabled) this._checkPredicate()
    return this._fallbackOr(e, fb)
  }

  /** Neither success nor failure (an ignored error, a cancelled call): frees a probe's slot. */
  _countIgnored(probe) {
    if (probe !== 0) {
      this._settleNative(2, probe)
      if (this._link !== null) this._link.probeDone()
    } else Atomics.add(this._L, this._li + S.IGNORED, 1)
  }

  /** `fb`'s answer to `e` (see _settleErr). */
  _fallbackOr(e, fb) {
    if (fb === null) return new Rethrow(e)
    Atomics.add(this._L, this._li + S.FALLBACK, 1)
    if (this._listeners !== null) this._emit('fallback', { name: this.name, error: e })
    return fb(e) // a throw or rejection here becomes the call's
  }

  /**
   * Counts a plain failure in the lane, without native code, when the circuit's failure budget
   * allows: native code publishes how many failures in a row certainly decide nothing (see
   * `failure_budget` in state_machine.rs), and every thread takes units from it. Returns false
   * when the failure must be reported now.
   */
  _countFailure() {
    const C = this._C
    const ci = this._ci
    // No mode check: native code publishes a zero budget before any mode but CLOSED.
    if (this._shouldTrip !== null || !this._enabled) return false
    const c = CLOCK[CLOCK_F64]
    if (this._timeWindow && c >= this._bucketEnd) this._flush()
    if (Atomics.sub(C, ci + S.BUDGET, 1) <= 0) return false
    const L = this._L
    const li = this._li
    this._LF[(li + S.LAST_FAIL) >> 1] = c === Infinity ? native.now() : c
    // Plain accesses where they suffice (as on the success path, see lib/breaker.js): OK is
    // this thread's own counter, and the Atomics.add after the store is a full barrier, so
    // whoever drains the new failure sees the store too.
    L[li + S.FAIL_AT_OK] = L[li + S.OK]
    Atomics.add(L, li + S.FAIL, 1)
    return true
  }

  /**
   * One outcome into native code. `gen`: the generation the call was admitted in. A breaker
   * made with `enabled: false` is metrics-only (+16): its outcomes are recorded, never decide.
   */
  _settleNative(kind, probe, gen) {
    const before = this._seqNow()
    native.settle(this._laneRec.id, this._enabled ? kind : kind | 16, probe, gen)
    this._sync(before)
  }

  _flush() {
    const before = this._seqNow()
    this._bucketEnd = this._laneRec.bucketEnd = native.flush(this._laneRec.id)
    this._sync(before)
  }

  _seqNow() {
    return Atomics.load(this._C, this._ci + S.SEQ)
  }

  /** A latency sample into the lane's ring (native code drains it). */
  _sample(ms) {
    const L = this._L
    const li = this._li
    const head = Atomics.load(L, li + S.RING_HEAD)
    if (head - Atomics.load(L, li + S.RING_TAIL) >= S.RING_LEN) this._flush()
    L[li + S.RING + (head & (S.RING_LEN - 1))] = Math.min(2 ** 31 - 1, Math.round(ms * 1000))
    Atomics.store(L, li + S.RING_HEAD, (head + 1) | 0)
  }

  _checkPredicate() {
    const c = native.counts(this._laneRec.id)
    const counts = { calls: c[0], failures: c[1], successes: c[2], slowCalls: c[3], consecutiveFailures: c[4], consecutiveSuccesses: c[5] }
    let trip = false
    try {
      trip = this._shouldTrip(counts) === true
    } catch (e) {
      this._log('error', `breakwater: shouldTrip of '${this.name}' threw (${e && e.message}); not tripping`)
    }
    if (trip) {
      const before = this._seqNow()
      native.trip(this._laneRec.id)
      this._sync(before)
    }
  }

  /** A call not let through; answered by `fb` (see _settleErr) if there is one. */
  _reject(mode, countHere, fb) {
    if (countHere) Atomics.add(this._L, this._li + S.REJECTED, 1)
    if (fb !== null && this._listeners === null) {
      // The fallback path: ~a microsecond of Error construction would be most of its cost.
      // A fallback that cannot see its argument gets none; one that can gets the error of
      // this open period, built once (its retryAfterMs is computed when read).
      const err = fb !== this._fallback || this._pErr.wantsError ? this._periodError(mode) : null
      try {
        return Promise.resolve(this._fallbackOr(err, fb))
      } catch (x) {
        return Promise.reject(x)
      }
    }
    const err = openError(this.name, mode === M_HALF_OPEN ? 'HALF_OPEN' : 'OPEN', this._retryAfter(mode))
    if (this._listeners !== null) this._emit('reject', { name: this.name, error: err })
    if (fb === null) return Promise.resolve(new Rethrow(err))
    try {
      return Promise.resolve(this._fallbackOr(err, fb))
    } catch (x) {
      return Promise.reject(x)
    }
  }

  _retryAfter(mode) {
    if (mode === M_FORCED_OPEN) return null
    if (mode === M_HALF_OPEN) return 0
    return Math.max(0, Math.ceil(this._CF[this._nextAt] - native.now()))
  }

  /**
   * One open-circuit error per open period and state, shared by the fallback calls in it; kept
   * in the record that breakers with a fallback have (three fields on every breaker were 24 B).
   */
  _periodError(mode) {
    const seq = this._seqNow()
    const cached = this._pErr
    if (cached !== null && cached.error !== null && cached.seq === seq && cached.mode === mode) return cached.error
    const e = openError(this.name, mode === M_HALF_OPEN ? 'HALF_OPEN' : 'OPEN', mode === M_FORCED_OPEN ? null : undefined)
    const breaker = this
    Object.defineProperty(e, 'retryAfterMs', { enumerable: true, configurable: true, get: () => breaker._retryAfter(mode) })
    if (cached !== null) {
      cached.error = e
      cached.seq = seq
      cached.mode = mode
    }
    return e
  }

  _disposedError() {
    const e = new Error(`breakwater: breaker '${this.name}' was disposed`)
    e.code = 'BREAKWATER_DISPOSED'
    return e
  }
}

module.exports = { Outcomes, Rethrow }
