'use strict'
// CircuitBreaker: the JavaScript face of one circuit.
//
// The hot path. `execute` reads the circuit's mode word from shared memory. When it is CLOSED
// (0) the action runs, and its success bumps this instance's own lane counter (Atomics.add) --
// no call into native code, no clock read, no allocation beyond the promise `then` makes.
//
// The hot path reads the mode and sequence words with plain typed-array reads, not
// Atomics.load: Node 20's V8 does not inline Atomics (a builtin call, ~90 instructions each,
// three per success, a fifth of the whole success path), and a plain read is one load. Aligned
// 32-bit reads cannot tear, and the reads are never cached across calls (the action runs in
// between, and each settles in a reaction of its own), so a plain read sees the word as it was
// a moment ago - as an Atomics.load would: the mode can change right after either. What makes
// late outcomes harmless is the generation check, and its order holds: the success is counted
// by Atomics.add, a full barrier, after the reads that allowed it (see _makeHandlers). Anything else -- a failure, a rejection decision that needs the clock,
// a half-open probe, a slow call, the end of a time bucket, the first call of each tick of the
// coarse clock (timed for the latency histogram) -- takes the general path, which asks native code. Native code drains
// every lane before it decides, so a decision sees every count from every thread.
//
// This file holds the instance (what it is made of, how it attaches to its circuit) and the
// fast path. The rest of the class is installed on its prototype from lib/breaker/, one
// concept a file:
//   admission.js  the general path of execute: options, states, probes (and `fb`, the
//                 fallback a call is answered by)
//   timed.js      calls with a deadline or the caller's AbortSignal
//   outcomes.js   successes, failures, ignored errors, fallbacks, rejections
//   events.js     transitions, their delivery to listeners and the log, on()
//   control.js    state, stats, open/close/reset, wrap, dispose, toJSON
//   instances.js  (not methods) the breakers and lanes of a thread, held weakly

const S = require('./shared.js')
const { native, M_CLOSED } = S
// The coarse clock (lib/shared.js), bound when the binary is loaded.
let CLOCK = null
let CLOCK_F64 = 0
S.whenLoaded(() => ({ CLOCK, CLOCK_F64 } = S))
const options = require('./options.js')
const { laneFor, track, localsOf, localNamed, syncAll, nameOf, pruneNames, isEnabled } = require('./breaker/instances.js')
const { Admission, never, noop, unusable } = require('./breaker/admission.js')
const { Timed } = require('./breaker/timed.js')
const { deadlinesFor } = require('./deadlines.js')
const { Outcomes } = require('./breaker/outcomes.js')
const { Events, EVENTS, PER_CALL_EVENTS } = require('./breaker/events.js')
const { Control, statsObject, linkStore } = require('./breaker/control.js')

// A count-window lane flushes at this many batched successes, long before an int32 wraps.
const FLUSH_AT = 1 << 30
// The signal that never aborts (see never()), read here by the fast path; set by the first breaker.
let NEVER = null
// Marks a construction by _existing (options resolved and circuit attached already).
const ATTACHED = Symbol('attached')

/**
 * Whether `fb` can see its argument (a declared parameter, a rest parameter, `arguments`): a
 * fallback that cannot is not handed the open-circuit error, so the error need not be built.
 */
function fallbackWantsError(fb) {
  return fb.length > 0 || /\.\.\.|arguments|\[native code\]/.test(Function.prototype.toString.call(fb))
}

/** Attaches to the circuit named o.name (made if new; the same numeric options if not). */
function attach(o) {
  try {
    return native.attach(o.name, options.native(o))
  } catch (e) {
    const err = new Error(`breakwater: cannot create breaker '${o.name}': ${e.message}`)
    err.code = 'BREAKWATER_OPTIONS_CONFLICT'
    throw err
  }
}

class CircuitBreaker {
  /**
   * @param {import('../index').CircuitBreakerOptions} opts
   */
  constructor(opts, attached) {
    let o
    let a
    if (attached === ATTACHED) {
      // _existing: options and attachment already made
      o = opts.o
      a = opts.a
    } else {
      o = options.resolve(opts)
      a = attach(o)
    }
    if (NEVER === null) NEVER = never() // (also for a first breaker made by _existing)
    // Every field is made here, in the constructor itself and in one order: V8 sizes an
    // instance from the assignments it sees in the constructor, and fields added later (in a
    // method) went to a separate property array, ~260 B more per breaker.
    /** The circuit's name: its identity in the process-wide registry. */
    this.name = o.name
    // The numeric configuration, one frozen object shared by every instance of equal config.
    this._o = options.intern(o)
    this._enabled = o.enabled
    this._fallback = o.fallback || null
    this._isFailure = o.isFailure || null
    this._shouldTrip = o.shouldTrip || null
    this._logger = o.logger
    const lane = laneFor(a.circuitId, o.name)
    this._laneRec = lane
    this._C = S.i32(a.circuitChunk)
    this._ci = a.circuitBase
    this._L = S.i32(lane.chunk)
    this._li = lane.base
    // Another instance may have moved the shared lane on since: a stale end only costs one
    // extra flush.
    this._bucketEnd = lane.bucketEnd
    this._seq = Atomics.load(this._C, this._ci + S.SEQ)
    // The coarse clock's value when this instance last timed a call (see execute).
    this._sampledAt = -1
    this._listeners = null
    // The deadline queue of the breaker's own timeout (shared by the thread's breakers of that
    // timeout, see lib/deadlines.js); null without a timeout. (The timeout itself is _o.timeout,
    // and _dl.timeoutMs: a field of its own would be 8 more bytes of every breaker.)
    this._dl = o.timeout > 0 ? deadlinesFor(o.timeout) : null
    // With a fallback, a record: whether it can see the open-circuit error, and that error, one
    // per open period, shared by the fallback calls in it (see _periodError). Null without one.
    this._pErr = o.fallback ? { wantsError: fallbackWantsError(o.fallback), error: null, seq: 0, mode: 0 } : null
    this._disposed = false
    this._lastState = 'CLOSED'
    // The shared store's link (lib/store/link.js), and the initial load the first calls wait for.
    this._link = null
    this._loading = null
    this._fast = false
    this._failing = false
    // The fast path's handlers and their generation (see _useGeneration).
    this._g = 0
    this._ok = null
    this._err = null
    this._failingForm = null
    this._refreshFast()
    this._useGeneration(this._seq)
    if (o.onStateChange) this.on('stateChange', o.onStateChange)
    track(this)
    this._lastState = this._modeState(Atomics.load(this._C, this._ci))
    if (attached === ATTACHED) return
    if (a.created && o.initialState !== undefined) {
      const st = o.initialState
      const before = this._seqNow()
      native.restore(a.circuitId, S.STATE_NAMES.indexOf(st.state), st.forced === true, st.nextAttemptAt == null ? NaN : st.nextAttemptAt)
      this._sync(before)
      this._lastState = this._modeState(Atomics.load(this._C, this._ci))
    }
    if (o.store) {
      // A store's snapshot wins over initialState when it is newer (it is the fleet's word).
      try {
        this._link = linkStore(o.store, this)
      } catch (e) {
        this.dispose() // a store that cannot be used leaves no circuit behind
        throw e
      }
      if (this._link.loading !== null) {
        this._loading = this._link.loading
        this._refreshFast()
      }
    }
  }

  // Derived on read, not stored: every field is 8 bytes of every breaker (see the constructor).
  /** The circuit's id (a slot in the registry; reused after a dispose, see nameOf). */
  get _cid() {
    return this._laneRec.cid
  }

  /** The circuit's memory as a Float64Array (the times; see lib/shared.js). */
  get _CF() {
    return this._C.f64
  }

  /** The lane's memory as a Float64Array. */
  get _LF() {
    return this._L.f64
  }

  /** Where nextAttemptAt is in the circuit's Float64Array (_CF). */
  get _nextAt() {
    return (this._ci + S.NEXT_ATTEMPT) >> 1
  }

  get _timeWindow() {
    return this._o.window.type === 'time'
  }

  /** Attaches a new instance to an existing circuit (getCircuitBreaker from another thread). */
  static _existing(name) {
    if (native.idOf(name) == null) return undefined
    let a
    try {
      a = native.attach(name, null)
    } catch {
      return undefined
    }
    const o = { ...options.fromNative(a.options), name, logger: console }
    return new CircuitBreaker({ o, a }, ATTACHED)
  }

  /**
   * Generations (gobreaker): the fast path's handlers belong to the generation (the circuit's
   * sequence word, which moves when the circuit leaves CLOSED and at every transition after)
   * they were made in. A call keeps the handlers it was admitted with; if the circuit has
   * moved on when it settles, its outcome goes to the lifetime counters only (native code
   * decides, see record_from in state_machine.rs). Rebuilt when this instance sees a
   * transition: the success path itself pays one load and compare. The handlers are made by
   * the first call that needs them (a breaker per tenant that is never called holds none), the
   * two of a run of failures (see _makeHandlers) at the first failure of a generation.
   */
  _useGeneration(g) {
    this._g = g
    this._failing = false
    this._ok = null
    this._err = null
    this._failingForm = null
  }

  /** From a failure on, until the next success, calls take the two-reaction form (see _makeHandlers). */
  _predictFailures() {
    if (this._failingForm === null) {
      // A call of an earlier generation may be the one failing: this generation's handlers
      // may not be made yet.
      if (this._ok === null) this._makeHandlers(this._g)
      const g = this._g
      const ok = this._ok
      const countErr = (e) => {
        try {
          if (!this._countPlainFailure(g)) this._settleErr(e, 0, 0, false, g, null)
        } catch (x) {
          // nothing may reject this reaction's promise: nobody handles it
          this._log('error', `breakwater: counting a failure of '${this.name}' failed: ${x && x.message}`)
        }
      }
      const okAfterFailure = (v) => {
        this._failing = false
        return ok(v)
      }
      this._failingForm = { countErr, okAfterFailure }
    }
    this._failing = true
  }

  /** The fast path is for plain enabled breakers without per-call listeners or predicates. */
  _refreshFast() {
    let perCall = false
    if (this._listeners !== null) for (const e of PER_CALL_EVENTS) if (this._listeners[e].length) perCall = true
    this._fast = this._enabled && !perCall && this._shouldTrip === null && this._o.slowCallDurationMs === 0 && !this._disposed && this._loading === null
  }

  /**
   * The handlers of the fast path for generation g, made together so that they share one
   * closure context (two per breaker, made per generation: their bytes count per breaker).
   *
   * Success: one counter bump in this instance's lane.
   *
   * Failure: without isFailure, a failure the budget covers is counted in the lane and
   * re-thrown (or handed to the fallback) with nothing else to decide. Passing a failure on
   * through a `then` handler costs a thenable hop (see Rethrow); letting the rejection
   * propagate natively and counting it in a second reaction is ~100 ns cheaper a failure, but
   * that second reaction would cost every success ~30 ns. So the breaker predicts: after a
   * failure (without a fallback, whose value must replace the rejection), calls take the
   * two-reaction form until the next success (see _predictFailures). A run of failures - an
   * outage, when the failure path is hot - pays the cheap form; a lone failure costs one
   * success the extra reaction.
   */
  _makeHandlers(g) {
    const L = this._L
    const li = this._li + S.OK
    const C = this._C
    const ci = this._ci
    const si = ci + S.SEQ
    this._ok = this._timeWindow
      ? (v) => {
          // A new time bucket (or a parked clock, +Infinity) flushes first, so the batched
          // successes always belong to the bucket they happened in.
          if (CLOCK[CLOCK_F64] >= this._bucketEnd) this._flush()
          if (C[ci] === M_CLOSED && C[si] === g) Atomics.add(L, li, 1)
          else this._settleNative(0, 0, g)
          return v
        }
      : (v) => {
          if (C[ci] !== M_CLOSED || C[si] !== g) this._settleNative(0, 0, g)
          else if (Atomics.add(L, li, 1) >= FLUSH_AT) this._flush()
          return v
        }
    this._err = (e) => {
      if (this._fallback === null && !this._failing) this._predictFailures()
      return this._countPlainFailure(g) ? this._fallbackOr(e, this._fallback) : this._settleErr(e, 0, 0, false, g, this._fallback)
    }
  }

  /** A fast-path failure of generation g with nothing to decide (no isFailure, within the budget), counted. */
  _countPlainFailure(g) {
    return this._fast && this._isFailure === null && this._C[this._ci + S.SEQ] === g && this._countFailure()
  }

  /**
   * Runs `action` through the breaker.
   * @template T
   * @param {((signal: AbortSignal) => T | PromiseLike<T>) | PromiseLike<T>} action
   * @param {{ bypass?: boolean, timeout?: number, signal?: AbortSignal }} [opts]
   * @returns {Promise<T>}
   */
  execute(action, opts) {
    // The latency histogram gets the first call of each tick of the coarse clock (5 ms): every
    // call of a breaker called less often than that, ~200 a second of a busy one. Timing a call
    // costs two clock reads and the general path, ~300 instructions: at 1 in 16 calls, as it
    // was, that was a third of the success path's overhead; per tick it is nothing at any rate,
    // and a quiet breaker has more samples than before. Parked (+inf, see ticker.rs), the clock
    // is not a tick: every call is timed until a full ring of samples wakes it (at the 16th).
    // The tick is kept as an int32 (ms, wrapping): a Smi field, where a double would cost every
    // breaker a 16-byte box.
    const c = CLOCK[CLOCK_F64] | 0
    if (c === this._sampledAt && opts === undefined && this._fast && this._C[this._ci] === M_CLOSED && typeof action === 'function') {
      if (this._dl === null) {
        if (this._ok === null) this._makeHandlers(this._g)
        let p
        try {
          p = action(NEVER)
        } catch (e) {
          p = Promise.reject(e)
        }
        try {
          if (!(p instanceof Promise)) p = Promise.resolve(p)
          if (this._failing) {
            // Failures are recent (see _makeHandlers): let the rejection pass through natively and
            // count it in a reaction of its own. Both reactions run before the caller resumes
            // (its continuation is queued only once the returned promise rejects), so a catch
            // block already sees the failure in the stats.
            const f = this._failingForm
            p.then(undefined, f.countErr)
            return p.then(f.okAfterFailure)
          }
          return p.then(this._ok, this._err)
        } catch (e) {
          // What the action returned cannot be looked at (see unusable()): a failure.
          return unusable(e).then(undefined, this._err)
        }
      }
      return this._runTimed(action, 0, 0, this._dl.timeoutMs, this._fallback)
    }
    const sampled = c !== this._sampledAt
    if (sampled) this._sampledAt = c === 0 ? -1 : c // (+inf | 0 is 0)
    return this._execute(action, opts, sampled, this._fallback)
  }
}

// The methods of each concept, installed as the class's own would be (non-enumerable, getters
// kept as getters). To V8 they are prototype methods like any other: call sites stay
// monomorphic and inline them as before.
for (const part of [Admission, Timed, Outcomes, Events, Control]) {
  const methods = Object.getOwnPropertyDescriptors(part.prototype)
  delete methods.constructor
  Object.defineProperties(CircuitBreaker.prototype, methods)
}

module.exports = { CircuitBreaker, statsObject, localsOf, localNamed, syncAll, nameOf, pruneNames, isEnabled, noop, EVENTS }
