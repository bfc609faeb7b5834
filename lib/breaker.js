'use strict'
// CircuitBreaker: the JavaScript face of one circuit.
//
// The hot path. `execute` reads the circuit's mode word from shared memory (Atomics.load).
// When it is CLOSED (0) the action runs, and its success bumps this instance's own lane
// counter (Atomics.add) — no call into native code, no clock read, no allocation beyond the
// promise `then` makes. Anything else — a failure, a rejection decision that needs the clock,
// a half-open probe, a slow call, the end of a time bucket, every 16th call (timed for the
// latency histogram) — takes the general path, which asks native code. Native code drains
// every lane before it decides, so a decision sees every count from every thread.

const S = require('./shared.js')
const { native, CLOCK, CLOCK_F64, M_CLOSED, M_OPEN, M_HALF_OPEN, M_FORCED_OPEN, M_DISPOSED } = S
const { CircuitBreakerTimeoutError, openError } = require('./errors.js')
const options = require('./options.js')
const { Deadlines, monoNow } = require('./deadlines.js')
// The store link loads with the first breaker that has a store (most have none): cold start.
let link = null
const linkStore = (store, b) => (link || (link = require('./store/link.js'))).linkStore(store, b)
const storeStatus = (name) => (link === null ? null : link.storeStatus(name))

// A signal that never aborts: what an action gets when the breaker has no timeout.
const NEVER = new AbortController().signal
// How far behind the coarse clock may be before anything relies on it being close.
const COARSE_LAG_MS = 50
// A count-window lane flushes at this many batched successes, long before an int32 wraps.
const FLUSH_AT = 1 << 30
// One call in SAMPLE_EVERY is timed for the latency histogram (two clock reads cost more than
// the rest of the hot path; a 1-in-16 sample gives the same percentiles).
const SAMPLE_MASK = 15
const EVENTS = ['stateChange', 'open', 'halfOpen', 'close', 'success', 'failure', 'reject', 'timeout', 'fallback']
// Events that need every call to take the general path (transition events do not).
const PER_CALL_EVENTS = new Set(['success', 'failure', 'reject', 'timeout', 'fallback'])

// Breakers of this thread, for events and getCircuitBreaker(). Held weakly: the common
// "new CircuitBreaker({ name }) per Lambda invocation" pattern must not pile up instances.
const byCircuit = new Map() // circuit id → Set<WeakRef<CircuitBreaker>>
const byName = new Map() // name → WeakRef<CircuitBreaker>
// One lane per circuit per thread, shared by that thread's instances of the circuit: native
// decisions drain every lane, so their number must follow threads, not instances. A lane is
// detached when the last instance using it has been collected.
const threadLanes = new Map() // circuit id → { id, chunk, base, bucketEnd, users }
const collected = new FinalizationRegistry(({ cid, ref, name, off }) => {
  if (off) {
    const n = disabled.get(name) - 1
    if (n > 0) disabled.set(name, n)
    else disabled.delete(name)
  }
  const set = byCircuit.get(cid)
  if (set !== undefined) {
    set.delete(ref)
    if (set.size === 0) byCircuit.delete(cid)
  }
  if (byName.get(name) === ref) byName.delete(name)
  const lane = threadLanes.get(cid)
  if (lane !== undefined && --lane.users === 0) {
    threadLanes.delete(cid)
    try {
      native.detach(lane.id)
    } catch {
      // already gone
    }
  }
})

function laneFor(cid) {
  let lane = threadLanes.get(cid)
  if (lane === undefined) {
    const l = native.newLane(cid)
    lane = { id: l.laneId, chunk: l.laneChunk, base: l.laneBase, bucketEnd: l.bucketEnd, users: 0 }
    threadLanes.set(cid, lane)
  }
  lane.users++
  return lane
}

function track(b) {
  const ref = new WeakRef(b)
  let set = byCircuit.get(b._cid)
  if (set === undefined) byCircuit.set(b._cid, (set = new Set()))
  set.add(ref)
  const first = byName.get(b.name)
  if (first === undefined || first.deref() === undefined || first.deref()._disposed) byName.set(b.name, ref)
  // Every thread hears of other threads' transitions, so its handlers follow the generation.
  listenToOtherThreads()
  const off = !b._enabled
  if (off) disabled.set(b.name, (disabled.get(b.name) || 0) + 1)
  collected.register(b, { cid: b._cid, ref, name: b.name, off })
}

/** Live breakers of this thread attached to circuit `cid`. */
function localsOf(cid) {
  const out = []
  const set = byCircuit.get(cid)
  if (set !== undefined) for (const r of set) { const b = r.deref(); if (b !== undefined) out.push(b) }
  return out
}

// Names of this thread's breakers made with `enabled: false` (stats report it per name).
const disabled = new Map() // name → count of live disabled instances

/** Whether stats should report `name` as enabled (no disabled breaker of it in this thread). */
function isEnabled(name) {
  return disabled.size === 0 || !disabled.has(name)
}

/** This thread's breaker named `name`, if one is alive and not disposed. */
function localNamed(name) {
  const r = byName.get(name)
  const b = r === undefined ? undefined : r.deref()
  return b === undefined || b._disposed ? undefined : b
}

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

// The deadline queue of a call with a signal but no timeout.
const NO_DEADLINE = { settled: noop }

/** options.signal, checked: anything with `aborted` and `addEventListener` (polyfills too). */
function checkSignal(s) {
  if (s !== null && typeof s === 'object' && typeof s.aborted === 'boolean' && typeof s.addEventListener === 'function') return s
  throw new TypeError(`breakwater: execute(action, options): options.signal must be an AbortSignal, got ${options.show(s)}`)
}

/** Why `signal` was aborted (an AbortError where a polyfill leaves the reason unset). */
function reasonOf(signal) {
  return signal.reason !== undefined ? signal.reason : new DOMException('This operation was aborted', 'AbortError')
}

// Transition events reach instances in other threads at once: the first transition listener
// of a thread registers a (weak) native callback that native code calls with the circuit id
// whenever any thread changes a circuit's state.
const TRANSITION_EVENTS = new Set(['stateChange', 'open', 'halfOpen', 'close'])
let notified = false

function listenToOtherThreads() {
  if (notified) return
  notified = true
  native.onTransitions((cid) => {
    try {
      for (const b of localsOf(cid)) b._sync()
    } catch {
      // a listener's error is handled in _emit; nothing here may throw into native code
    }
  })
}

// `new Promise(exec)` with a shared executor: no closure per call.
let R = null
let J = null
function exec(resolve, reject) {
  R = resolve
  J = reject
}

/**
 * Rejects whoever adopts it with `error`, without a `throw`. Returned from a `then` handler,
 * it passes a failure on to the caller: throwing there costs ~0.6 µs in V8 (exception
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

class TimedCall {
  constructor(queue, probe, t0, timeoutMs, deadline, gen) {
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
    this.resolve = R
    this.reject = J
  }
}

class CircuitBreaker {
  /**
   * @param {import('../index').CircuitBreakerOptions} opts
   */
  constructor(opts) {
    const o = options.resolve(opts)
    this._attach(o, options.native(o))
  }

  /** Attaches a new instance to an existing circuit (getCircuitBreaker from another thread). */
  static _existing(name) {
    if (native.idOf(name) == null) return undefined
    const b = Object.create(CircuitBreaker.prototype)
    let a
    try {
      a = native.attach(name, null)
    } catch {
      return undefined
    }
    const o = { ...options.fromNative(a.options), name, logger: console }
    b._init(o, a)
    return b
  }

  _attach(o, n) {
    let a
    try {
      a = native.attach(o.name, n)
    } catch (e) {
      const err = new Error(`breakwater: cannot create breaker '${o.name}': ${e.message}`)
      err.code = 'BREAKWATER_OPTIONS_CONFLICT'
      throw err
    }
    this._init(o, a)
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

  _init(o, a) {
    /** The circuit's name: its identity in the process-wide registry. */
    this.name = o.name
    this._o = o
    this._timeout = o.timeout
    this._slowMs = o.slowCallDurationMs
    this._enabled = o.enabled
    this._fallback = o.fallback || null
    this._isFailure = o.isFailure || null
    this._shouldTrip = o.shouldTrip || null
    this._logger = o.logger
    this._cid = a.circuitId
    const lane = laneFor(a.circuitId)
    this._laneRec = lane
    this._lane = lane.id
    this._C = S.i32(a.circuitChunk)
    this._ci = a.circuitBase
    this._CF = S.f64(a.circuitChunk)
    this._nextAt = (a.circuitBase + S.NEXT_ATTEMPT) >> 1
    this._L = S.i32(lane.chunk)
    this._LF = S.f64(lane.chunk)
    this._li = lane.base
    this._timeWindow = a.options.windowType === 'time'
    // Another instance may have moved the shared lane on since: a stale end only costs one
    // extra flush.
    this._bucketEnd = lane.bucketEnd
    this._seq = Atomics.load(this._C, this._ci + S.SEQ)
    this._n = 0
    this._listeners = null
    this._deadlines = null
    this._dl = null
    this._pErr = null
    this._pErrSeq = -1
    this._pErrMode = -1
    this._disposed = false
    this._lastState = 'CLOSED'
    // The shared store's link (lib/store/link.js), and the initial load the first calls wait for.
    this._link = null
    this._loading = null
    // A fallback that cannot see its argument (no declared parameter, no rest, no
    // `arguments`) is not handed the open-circuit error, so the error need not be built.
    this._fbWantsError = this._fallback !== null && (this._fallback.length > 0 || /\.\.\.|arguments|\[native code\]/.test(Function.prototype.toString.call(this._fallback)))
    this._fast = false
    this._refreshFast()
    this._failing = false
    this._useGeneration(this._seq)
    if (o.onStateChange) this.on('stateChange', o.onStateChange)
    track(this)
    this._lastState = this._modeState(Atomics.load(this._C, this._ci))
  }

  /**
   * Generations (gobreaker): the fast path's handlers belong to the generation (the circuit's
   * sequence word, which moves when the circuit leaves CLOSED and at every transition after)
   * they were made in. A call keeps the handlers it was admitted with; if the circuit has
   * moved on when it settles, its outcome goes to the lifetime counters only (native code
   * decides, see record_from in state_machine.rs). Rebuilt when this instance sees a
   * transition: the success path itself pays one load and compare.
   */
  _useGeneration(g) {
    this._g = g
    const ok = (this._ok = this._makeOk(g))
    this._err = this._makeErr(g)
    this._countErr = (e) => {
      try {
        if (!this._countPlainFailure(g)) this._settleErr(e, 0, 0, false, g)
      } catch (x) {
        // nothing may reject this reaction's promise: nobody handles it
        this._log('error', `breakwater: counting a failure of '${this.name}' failed: ${x && x.message}`)
      }
    }
    this._okAfterFailure = (v) => {
      this._failing = false
      return ok(v)
    }
  }

  /** The fast path is for plain enabled breakers without per-call listeners or predicates. */
  _refreshFast() {
    let perCall = false
    if (this._listeners !== null) for (const e of PER_CALL_EVENTS) if (this._listeners[e].length) perCall = true
    this._fast = this._enabled && !perCall && this._shouldTrip === null && this._slowMs === 0 && !this._disposed && this._loading === null
  }

  /**
   * The failure handler of the fast path. Without isFailure, a failure the budget covers is
   * counted in the lane and re-thrown (or handed to the fallback) with nothing else to decide.
   *
   * Passing a failure on through a `then` handler costs a thenable hop (see Rethrow); letting
   * the rejection propagate natively and counting it in a second reaction is ~100 ns cheaper
   * a failure, but that second reaction would cost every success ~30 ns. So the breaker
   * predicts: after a failure (without a fallback, whose value must replace the rejection),
   * calls take the two-reaction form until the next success. A run of failures - an outage,
   * when the failure path is hot - pays the cheap form; a lone failure costs one success the
   * extra reaction.
   */
  _makeErr(g) {
    return (e) => {
      if (this._fallback === null) this._failing = true
      return this._countPlainFailure(g) ? this._fallbackOr(e) : this._settleErr(e, 0, 0, false, g)
    }
  }

  /** A fast-path failure of generation g with nothing to decide (no isFailure, within the budget), counted. */
  _countPlainFailure(g) {
    return this._fast && this._isFailure === null && this._seqNow() === g && this._countFailure()
  }

  /** The success handler of the fast path: one counter bump in this instance's lane. */
  _makeOk(g) {
    const L = this._L
    const li = this._li + S.OK
    const C = this._C
    const ci = this._ci
    const si = ci + S.SEQ
    if (this._timeWindow) {
      return (v) => {
        // A new time bucket (or a parked clock, +Infinity) flushes first, so the batched
        // successes always belong to the bucket they happened in.
        if (CLOCK[CLOCK_F64] >= this._bucketEnd) this._flush()
        if (Atomics.load(C, ci) === M_CLOSED && Atomics.load(C, si) === g) Atomics.add(L, li, 1)
        else this._settleNative(0, 0, g)
        return v
      }
    }
    return (v) => {
      if (Atomics.load(C, ci) !== M_CLOSED || Atomics.load(C, si) !== g) this._settleNative(0, 0, g)
      else if (Atomics.add(L, li, 1) >= FLUSH_AT) this._flush()
      return v
    }
  }

  /**
   * Runs `action` through the breaker.
   * @template T
   * @param {((signal: AbortSignal) => T | PromiseLike<T>) | PromiseLike<T>} action
   * @param {{ bypass?: boolean, timeout?: number, signal?: AbortSignal }} [opts]
   * @returns {Promise<T>}
   */
  execute(action, opts) {
    // The first 16 calls are all timed (a quiet breaker still gets latency figures), then 1 in 16.
    const n = (this._n = (this._n + 1) & 0x3fffffff)
    if ((n & SAMPLE_MASK) !== 0 && n > 16 && opts === undefined && this._fast && Atomics.load(this._C, this._ci) === M_CLOSED && typeof action === 'function') {
      if (this._timeout === 0) {
        let p
        try {
          p = action(NEVER)
        } catch (e) {
          p = Promise.reject(e)
        }
        try {
          if (!(p instanceof Promise)) p = Promise.resolve(p)
          if (this._failing) {
            // Failures are recent (see _makeErr): let the rejection pass through natively and
            // count it in a reaction of its own. Both reactions run before the caller resumes
            // (its continuation is queued only once the returned promise rejects), so a catch
            // block already sees the failure in the stats.
            p.then(undefined, this._countErr)
            return p.then(this._okAfterFailure)
          }
          return p.then(this._ok, this._err)
        } catch (e) {
          // What the action returned cannot be looked at (see unusable()): a failure.
          return unusable(e).then(undefined, this._err)
        }
      }
      return this._runTimed(action, 0, 0, this._timeout)
    }
    return this._execute(action, opts, (n & SAMPLE_MASK) === 0 || n <= 16)
  }

  /** The general path: options, every state, timing. */
  _execute(action, opts, sampled) {
    if (typeof action !== 'function') {
      let thenable = false
      try {
        thenable = action !== null && typeof action === 'object' && typeof action.then === 'function'
      } catch {
        // a throwing `then` getter or a revoked Proxy: not something we can run
      }
      if (!thenable) return Promise.reject(new TypeError(`breakwater: execute(action) needs a function or a promise, got ${options.show(action)}`))
    }
    let timeout = this._timeout
    let signal
    if (opts !== undefined) {
      if (opts === null || typeof opts !== 'object') return this._notRun(action, Promise.reject(new TypeError(`breakwater: execute(action, options): options must be an object, got ${options.show(opts)}`)))
      try {
        if (opts.bypass === true) return this._bypass(action, opts.signal)
        if (opts.timeout !== undefined) timeout = options.check('timeout', opts.timeout)
        if (opts.signal !== undefined) signal = checkSignal(opts.signal)
        // Cancelled before it started: not run, not counted (nothing happened), no fallback.
        if (signal !== undefined && signal.aborted) return this._notRun(action, Promise.reject(reasonOf(signal)))
        if (opts.retry !== undefined) return require('./retry.js').retryThrough(this, action, opts)
      } catch (e) {
        return this._notRun(action, Promise.reject(e))
      }
    }
    if (this._disposed) return this._notRun(action, Promise.reject(this._disposedError()))
    // The first calls after creation wait for the store's initial load (bounded by its
    // loadTimeoutMs; the link clears _loading when it is over, loaded or not).
    if (this._loading !== null) return this._loading.then(() => this._execute(action, opts, sampled))
    let probe = 0
    if (this._enabled) {
      const mode = Atomics.load(this._C, this._ci)
      if (mode === M_OPEN || mode === M_FORCED_OPEN) {
        // The coarse clock can lag by a few ms, so close to nextAttemptAt the exact clock
        // decides. Parked (+inf), it defers to native code, which has the exact time.
        const c = CLOCK[CLOCK_F64]
        const at = this._CF[this._nextAt]
        if (mode === M_FORCED_OPEN || (c < at && (at - c > COARSE_LAG_MS || native.now() < at))) return this._notRun(action, this._reject(mode, true))
        probe = this._acquire()
        if (probe < 0) return this._notRun(action, this._reject(Atomics.load(this._C, this._ci), false))
      } else if (mode === M_HALF_OPEN) {
        probe = this._acquire()
        if (probe < 0) return this._notRun(action, this._reject(M_HALF_OPEN, false))
      } else if (mode === M_DISPOSED) {
        return this._notRun(action, Promise.reject(this._disposedError()))
      }
    }
    // A probe asks the store for one of the fleet's probe permits first (bounded wait).
    if (probe > 0 && this._link !== null && this._link.gatesProbes) return this._gatedProbe(action, probe, timeout, signal)
    const t0 = sampled || this._slowMs > 0 ? performance.now() : 0
    if (signal !== undefined) return this._runSignal(action, probe, t0, timeout, signal)
    return this._run(action, probe, t0, timeout)
  }

  _gatedProbe(action, probe, timeout, signal) {
    return this._link.acquireProbe().then((got) => {
      if (got) return signal === undefined ? this._run(action, probe, performance.now(), timeout) : this._runSignal(action, probe, performance.now(), timeout, signal)
      // Another instance of the fleet is probing: this call is rejected like any other.
      this._settleNative(3, probe)
      return this._notRun(action, this._reject(Atomics.load(this._C, this._ci), false))
    })
  }

  _run(action, probe, t0, timeout) {
    if (timeout > 0) return this._runTimed(action, probe, t0, timeout)
    const gen = this._seqNow()
    let p
    try {
      p = typeof action === 'function' ? action(NEVER) : action
    } catch (e) {
      p = Promise.reject(e)
    }
    const settleErr = (e) => this._settleErr(e, probe, t0, false, gen)
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
    const p = native.acquire(this._lane)
    this._sync(before)
    return p
  }

  /** Runs the action outside the breaker; a caller signal still applies (aborted: not run). */
  _bypass(action, s) {
    let signal = NEVER
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

  /** A call with a deadline; one shared timer per breaker and timeout value. */
  _runTimed(action, probe, t0, timeoutMs) {
    // An exact clock, not the coarse one: a starved clock thread must never make a call time
    // out early. A monotonic one (see lib/deadlines.js), not Date.now(): a step of the wall
    // clock must move no deadline.
    const now = monoNow()
    const d = new Promise(exec)
    const q = timeoutMs === this._timeout && this._dl !== null ? this._dl : this._deadlinesFor(timeoutMs)
    const call = new TimedCall(q, probe, t0, timeoutMs, now + timeoutMs, this._seqNow())
    q.add(call)
    let p
    try {
      // The signal costs an AbortController; only actions that declare a parameter get one.
      p = typeof action === 'function'
        ? action(action.length > 0 ? (call.ctrl = new AbortController()).signal : NEVER)
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
  _runSignal(action, probe, t0, timeoutMs, signal) {
    if (signal.aborted) {
      // Aborted while a probe waited for the store's permit: cancelled, the slot given back.
      this._countIgnored(probe)
      return this._notRun(action, Promise.reject(reasonOf(signal)))
    }
    const d = new Promise(exec)
    const q = timeoutMs === 0 ? NO_DEADLINE : timeoutMs === this._timeout && this._dl !== null ? this._dl : this._deadlinesFor(timeoutMs)
    const call = new TimedCall(q, probe, t0, timeoutMs, monoNow() + timeoutMs)
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
    call.done = true
    call.queue.settled()
    call.off()
    call.ctrl.abort(reason)
    this._countIgnored(call.probe)
    call.reject(reason)
  }

  _deadlinesFor(timeoutMs) {
    if (this._deadlines === null) this._deadlines = new Map()
    let q = this._deadlines.get(timeoutMs)
    if (q === undefined) {
      q = new Deadlines((call) => this._expire(call))
      this._deadlines.set(timeoutMs, q)
      if (timeoutMs === this._timeout) this._dl = q
    }
    return q
  }

  _timedOk(call, v) {
    if (call.done) return // timed out already: the late result is ignored
    call.done = true
    call.queue.settled()
    if (call.probe === 0 && call.t0 === 0 && this._fast && call.gen === this._g) call.resolve(this._ok(v))
    else {
      try {
        call.resolve(this._settleOk(v, call.probe, call.t0, call.gen))
      } catch (e) {
        call.reject(e)
      }
    }
  }

  _timedErr(call, e) {
    if (call.done) return
    call.done = true
    call.queue.settled()
    try {
      call.resolve(this._settleErr(e, call.probe, call.t0, false, call.gen))
    } catch (x) {
      call.reject(x)
    }
  }

  _expire(call) {
    if (call.off !== null) call.off()
    const err = new CircuitBreakerTimeoutError(this.name, call.timeoutMs, this._lastState)
    if (call.ctrl !== null) call.ctrl.abort(err)
    if (this._listeners !== null) this._emit('timeout', { name: this.name, timeoutMs: call.timeoutMs })
    try {
      call.resolve(this._settleErr(err, call.probe, call.t0, true, call.gen))
    } catch (x) {
      call.reject(x)
    }
  }

  // ---- outcomes --------------------------------------------------------------------------

  _settleOk(v, probe, t0, gen) {
    let slow = false
    if (t0 !== 0) {
      const ms = performance.now() - t0
      slow = this._slowMs > 0 && ms > this._slowMs
      this._sample(ms)
    }
    if (probe !== 0 || slow || this._shouldTrip !== null || !this._enabled || Atomics.load(this._C, this._ci) !== M_CLOSED || gen !== this._g || this._seqNow() !== gen) {
      this._settleNative(slow ? 4 : 0, probe, gen)
      if (probe !== 0 && this._link !== null) this._link.probeDone()
    } else {
      this._ok(v)
    }
    if (this._listeners !== null) this._emit('success', { name: this.name })
    if (this._shouldTrip !== null && this._enabled) this._checkPredicate()
    return v
  }

  /**
   * The fallback's value, or (without a fallback) a Rethrow of the error: what the call
   * resolves to. A fallback that throws throws here; the caller makes that the call's result.
   */
  _settleErr(e, probe, t0, isTimeout, gen) {
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
      const ms = performance.now() - t0
      slow = this._slowMs > 0 && ms > this._slowMs
      this._sample(ms)
    }
    if (probe !== 0 || slow || isTimeout || this._seqNow() !== gen || !this._countFailure()) {
      this._settleNative(1 | (slow ? 4 : 0) | (isTimeout ? 8 : 0), probe, gen)
      if (probe !== 0 && this._link !== null) this._link.probeDone()
    }
    if (this._listeners !== null) this._emit('failure', { name: this.name, error: e, timeout: isTimeout })
    if (this._shouldTrip !== null && this._enabled) this._checkPredicate()
    return this._fallbackOr(e)
  }

  /** Neither success nor failure (an ignored error, a cancelled call): frees a probe's slot. */
  _countIgnored(probe) {
    if (probe !== 0) {
      this._settleNative(2, probe)
      if (this._link !== null) this._link.probeDone()
    } else Atomics.add(this._L, this._li + S.IGNORED, 1)
  }

  _fallbackOr(e) {
    if (this._fallback === null) return new Rethrow(e)
    Atomics.add(this._L, this._li + S.FALLBACK, 1)
    if (this._listeners !== null) this._emit('fallback', { name: this.name, error: e })
    return this._fallback(e) // a throw or rejection here becomes the call's
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
    Atomics.store(L, li + S.FAIL_AT_OK, Atomics.load(L, li + S.OK))
    Atomics.add(L, li + S.FAIL, 1)
    return true
  }

  /**
   * One outcome into native code. `gen`: the generation the call was admitted in. A breaker
   * made with `enabled: false` is metrics-only (+16): its outcomes are recorded, never decide.
   */
  _settleNative(kind, probe, gen) {
    const before = this._seqNow()
    native.settle(this._lane, this._enabled ? kind : kind | 16, probe, gen)
    this._sync(before)
  }

  _flush() {
    const before = this._seqNow()
    this._bucketEnd = this._laneRec.bucketEnd = native.flush(this._lane)
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
    const c = native.counts(this._lane)
    const counts = { calls: c[0], failures: c[1], successes: c[2], slowCalls: c[3], consecutiveFailures: c[4], consecutiveSuccesses: c[5] }
    let trip = false
    try {
      trip = this._shouldTrip(counts) === true
    } catch (e) {
      this._log('error', `breakwater: shouldTrip of '${this.name}' threw (${e && e.message}); not tripping`)
    }
    if (trip) {
      const before = this._seqNow()
      native.trip(this._lane)
      this._sync(before)
    }
  }

  _reject(mode, countHere) {
    if (countHere) Atomics.add(this._L, this._li + S.REJECTED, 1)
    const fb = this._fallback
    if (fb !== null && this._listeners === null) {
      // The fallback path: ~a microsecond of Error construction would be most of its cost.
      // A fallback that cannot see its argument gets none; one that can gets the error of
      // this open period, built once (its retryAfterMs is computed when read).
      const err = this._fbWantsError ? this._periodError(mode) : null
      try {
        return Promise.resolve(this._fallbackOr(err))
      } catch (x) {
        return Promise.reject(x)
      }
    }
    const err = openError(this.name, mode === M_HALF_OPEN ? 'HALF_OPEN' : 'OPEN', this._retryAfter(mode))
    if (this._listeners !== null) this._emit('reject', { name: this.name, error: err })
    if (fb === null) return Promise.resolve(new Rethrow(err))
    try {
      return Promise.resolve(this._fallbackOr(err))
    } catch (x) {
      return Promise.reject(x)
    }
  }

  _retryAfter(mode) {
    if (mode === M_FORCED_OPEN) return null
    if (mode === M_HALF_OPEN) return 0
    return Math.max(0, Math.ceil(this._CF[this._nextAt] - native.now()))
  }

  /** One open-circuit error per open period and state, shared by the fallback calls in it. */
  _periodError(mode) {
    const seq = this._seqNow()
    const cached = this._pErr
    if (cached !== null && this._pErrSeq === seq && this._pErrMode === mode) return cached
    const e = openError(this.name, mode === M_HALF_OPEN ? 'HALF_OPEN' : 'OPEN', mode === M_FORCED_OPEN ? null : undefined)
    const breaker = this
    Object.defineProperty(e, 'retryAfterMs', { enumerable: true, configurable: true, get: () => breaker._retryAfter(mode) })
    this._pErr = e
    this._pErrSeq = seq
    this._pErrMode = mode
    return e
  }

  _disposedError() {
    const e = new Error(`breakwater: breaker '${this.name}' was disposed`)
    e.code = 'BREAKWATER_DISPOSED'
    return e
  }

  // ---- transitions and events ------------------------------------------------------------

  /**
   * Delivers transitions that happened since this instance last looked, to every instance of
   * the circuit in this thread. Those after `before` (the sequence number read just before
   * this instance's own native call) were made by that call: this instance logs them, once
   * for the whole process.
   */
  _sync(before = Infinity) {
    const seq = Atomics.load(this._C, this._ci + S.SEQ)
    if (seq === this._seq) return
    let rows
    try {
      rows = native.transitions(this._cid, this._seq)
    } catch {
      return
    }
    const list = localsOf(this._cid)
    if (!list.includes(this)) list.push(this)
    for (const b of list) b._deliver(rows, b === this ? before : Infinity)
  }

  _deliver(rows, logAfter) {
    // A transition ends the generation the handlers belong to: calls admitted from now on get new ones.
    const g = Atomics.load(this._C, this._ci + S.SEQ)
    if (g !== this._g) this._useGeneration(g)
    for (let i = 0; i < rows.length; i += 5) {
      const seq = rows[i]
      if (seq <= this._seq) continue
      const log = seq > logAfter
      this._seq = seq
      const from = S.STATE_NAMES[rows[i + 1]]
      const to = S.STATE_NAMES[rows[i + 2]]
      const reason = S.REASONS[rows[i + 3]]
      this._lastState = to
      const ev = { name: this.name, from, to, reason, at: rows[i + 4] }
      if (log) {
        this._logTransition(ev)
        // This process's own decision (not one read from the store): the fleet hears of it now.
        if (this._link !== null && reason !== 'store') this._link.ownTransition(ev.at, to, reason, this)
      } else if (this._link !== null && reason !== 'store') {
        this._link.decidedElsewhere(this) // another thread's decision: its link publishes it
      }
      if (this._listeners !== null) {
        this._emit('stateChange', ev)
        this._emit(to === 'OPEN' ? 'open' : to === 'HALF_OPEN' ? 'halfOpen' : 'close', ev)
      }
    }
  }

  _logTransition(ev) {
    const level = ev.to === 'OPEN' ? 'warn' : 'info'
    this._log(level, `[breakwater] circuit '${ev.name}' ${ev.from} -> ${ev.to} (${ev.reason})`)
  }

  _log(level, msg) {
    const l = this._logger
    if (l === null) return
    const f = typeof l[level] === 'function' ? l[level] : typeof l.log === 'function' ? l.log : null
    if (f === null) return
    try {
      f.call(l, msg)
    } catch {
      // a broken logger must not break calls
    }
  }

  _emit(event, payload) {
    const ls = this._listeners[event]
    for (let i = 0; i < ls.length; i++) {
      try {
        ls[i](payload)
      } catch (e) {
        this._log('error', `breakwater: a '${event}' listener of '${this.name}' threw: ${e && e.message}`)
      }
    }
  }

  /**
   * Subscribes to an event; returns the function that unsubscribes.
   * @param {string} event
   * @param {(payload: any) => void} listener
   */
  on(event, listener) {
    if (!EVENTS.includes(event)) throw new TypeError(`breakwater: unknown event ${options.show(event)}; events are ${EVENTS.join(', ')}`)
    if (typeof listener !== 'function') throw new TypeError(`breakwater: on('${event}', listener): listener must be a function, got ${options.show(listener)}`)
    if (this._listeners === null) {
      this._listeners = {}
      for (const e of EVENTS) this._listeners[e] = []
    }
    this._listeners[event].push(listener)
    if (TRANSITION_EVENTS.has(event)) listenToOtherThreads()
    this._refreshFast()
    let on = true
    return () => {
      if (!on) return
      on = false
      const ls = this._listeners[event]
      const i = ls.indexOf(listener)
      if (i >= 0) ls.splice(i, 1)
      this._refreshFast()
    }
  }

  // ---- state, stats, control -------------------------------------------------------------

  /** 'CLOSED' | 'OPEN' | 'HALF_OPEN'. Reading it may move OPEN to HALF_OPEN. */
  get state() {
    if (this._disposed) return this._lastState
    let mode = Atomics.load(this._C, this._ci)
    if ((mode === M_OPEN && native.now() >= this._CF[this._nextAt]) || (mode === M_HALF_OPEN && this._o.halfOpenTimeout > 0)) {
      this._flush()
      mode = Atomics.load(this._C, this._ci)
    } else {
      this._sync()
    }
    if (mode === M_DISPOSED) return this._lastState
    return this._modeState(mode)
  }

  _modeState(mode) {
    return mode === M_OPEN || mode === M_FORCED_OPEN ? 'OPEN' : mode === M_HALF_OPEN ? 'HALF_OPEN' : mode === M_DISPOSED ? this._lastState : 'CLOSED'
  }

  get enabled() {
    return this._enabled
  }

  /** A plain, JSON-serialisable snapshot of the circuit's numbers. */
  getStats() {
    if (this._disposed) throw this._disposedError()
    const before = this._seqNow()
    const d = native.stats(this._cid)
    this._sync(before)
    return statsObject(this.name, d, 0, this._enabled)
  }

  /** Forces OPEN until close()/halfOpen()/reset(); with a duration, opens like a trip. */
  open(durationMs) {
    if (durationMs !== undefined) options.check('resetTimeout', durationMs)
    this._control(0, durationMs === undefined ? -1 : durationMs)
  }

  close() {
    this._control(1, 0)
  }

  halfOpen() {
    this._control(2, 0)
  }

  /** CLOSED, empty window, zeroed counters. */
  reset() {
    this._control(3, 0)
  }

  _control(op, arg) {
    if (this._disposed) throw this._disposedError()
    const before = this._seqNow()
    native.control(this._cid, op, arg)
    this._sync(before)
  }

  /**
   * A function with fn's signature that runs through execute. With `{ passSignal: true }`, fn
   * gets the call's AbortSignal (aborted on timeout) as one more argument after the caller's.
   * @template {(...args: any[]) => any} F
   * @param {F} fn
   * @param {{ passSignal?: boolean } & object} [opts] execute's options for every call (e.g. { retry }), and passSignal
   */
  wrap(fn, opts) {
    if (typeof fn !== 'function') throw new TypeError(`breakwater: wrap(fn) needs a function, got ${options.show(fn)}`)
    if (opts !== undefined && (opts === null || typeof opts !== 'object')) throw new TypeError(`breakwater: wrap(fn, options): options must be an object, got ${options.show(opts)}`)
    const passSignal = opts === undefined ? undefined : opts.passSignal
    if (passSignal !== undefined && typeof passSignal !== 'boolean') throw new TypeError(`breakwater: wrap(fn, options): options.passSignal must be a boolean, got ${options.show(passSignal)}`)
    // What is left of opts are execute's options for every call; none at all keeps the fast path.
    let exec
    if (opts !== undefined) {
      const { passSignal: _, ...rest } = opts
      if (Object.keys(rest).length > 0) exec = rest
    }
    const breaker = this
    if (passSignal === true) {
      // The action declares its parameter, so it gets a live signal (see execute).
      return function wrapped(...args) {
        return breaker.execute((signal) => fn.call(this, ...args, signal), exec)
      }
    }
    return function wrapped(...args) {
      return breaker.execute(() => fn.apply(this, args), exec)
    }
  }

  /**
   * Removes the circuit from the registry; every breaker attached to it (in any thread) then
   * rejects calls. Calls in flight still settle normally. A breaker made later under the same
   * name starts a new circuit.
   */
  dispose() {
    if (this._disposed) return
    this._lastState = this.state
    try {
      native.dispose(this._cid)
    } catch {
      // already gone
    }
    for (const b of localsOf(this._cid)) {
      b._lastState = this._lastState
      b._disposed = true
      b._fast = false
    }
    this._disposed = true
    this._fast = false
    // Lanes stay attached until the instances are collected: a call still in flight may
    // write to its lane, and a freed lane could already belong to someone else.
  }

  /**
   * A snapshot of the circuit's state, JSON-serialisable; `initialState` takes it back.
   * @returns {{ name: string, state: string, forced: boolean, nextAttemptAt: number|null, stateChangedAt: number, savedAt: number }}
   */
  toJSON() {
    const s = this._disposed ? null : this.getStats()
    const mode = Atomics.load(this._C, this._ci)
    return {
      name: this.name,
      state: s ? s.state : this._lastState,
      forced: mode === M_FORCED_OPEN,
      nextAttemptAt: s ? s.nextAttemptAt : null,
      stateChangedAt: s ? s.stateChangedAt : null,
      savedAt: Date.now(),
    }
  }
}

const STATE_OF = ['CLOSED', 'OPEN', 'HALF_OPEN']

/**
 * Names the flat numbers that native stats() returns (see push_stats in src/lib.rs; rates and
 * latencies arrive rounded, NaN stands for null).
 */
function statsObject(name, d, o, enabled) {
  const lastFailureAt = d[o + 22]
  const lastSuccessAt = d[o + 23]
  const nextAttemptAt = d[o + 25]
  const retryAfterMs = d[o + 26]
  return {
    name,
    state: STATE_OF[d[o]],
    enabled,
    totalRequests: d[o + 2] + d[o + 3] + d[o + 4] + d[o + 7],
    successCount: d[o + 2],
    failureCount: d[o + 3],
    rejectionCount: d[o + 4],
    timeoutCount: d[o + 5],
    fallbackCount: d[o + 6],
    ignoredCount: d[o + 7],
    slowCallCount: d[o + 8],
    window: { calls: d[o + 9], failures: d[o + 10], successes: d[o + 11], slowCalls: d[o + 12] },
    failureRate: d[o + 13],
    slowCallRate: d[o + 14],
    consecutiveFailures: d[o + 15],
    consecutiveSuccesses: d[o + 16],
    latencyMs: { mean: d[o + 17], p50: d[o + 18], p90: d[o + 19], p99: d[o + 20], max: d[o + 21] },
    lastFailureAt: lastFailureAt === lastFailureAt ? lastFailureAt : null,
    lastSuccessAt: lastSuccessAt === lastSuccessAt ? lastSuccessAt : null,
    stateChangedAt: d[o + 24],
    nextAttemptAt: nextAttemptAt === nextAttemptAt ? nextAttemptAt : null,
    retryAfterMs: retryAfterMs === retryAfterMs ? retryAfterMs : null,
    store: storeStatus(name),
    failureThreshold: d[o + 27],
    minimumRequests: d[o + 28],
    timeout: d[o + 29],
    resetTimeout: d[o + 30],
  }
}

/** Delivers pending transitions to every live breaker of this thread (after a stats read). */
function syncAll() {
  for (const set of byCircuit.values()) {
    for (const r of set) {
      const b = r.deref()
      if (b !== undefined) b._sync()
    }
  }
}

// Circuit names by serial (ids are slots and get reused; serials never do).
const names = new Map()

/**
 * After a read of every circuit's rows (`serials` of the live ones): forgets the names of
 * circuits that are gone, once they are more than the live ones (amortised O(1) per read).
 */
function pruneNames(live, serialAt) {
  if (names.size <= 2 * live + 64) return
  const keep = new Set()
  for (let i = 0; i < live; i++) keep.add(serialAt(i))
  for (const k of names.keys()) if (!keep.has(k)) names.delete(k)
}

/** The name of the circuit in slot `id` with serial `serial`, or undefined if it is gone. */
function nameOf(id, serial) {
  let n = names.get(serial)
  if (n === undefined) {
    const r = native.nameOf(id)
    if (r == null || r.serial !== serial) return undefined
    n = r.name
    names.set(serial, n)
  }
  return n
}

module.exports = { CircuitBreaker, statsObject, localsOf, localNamed, syncAll, nameOf, pruneNames, isEnabled, noop, EVENTS }
