'use strict'
// What a user reads and commands: the state getter, stats, open/close/halfOpen/reset, wrap,
// dispose and toJSON; and the plain stats object built from native code's numbers.

const S = require('../shared.js')
const { native, M_OPEN, M_HALF_OPEN, M_FORCED_OPEN, M_DISPOSED } = S
const options = require('../options.js')
const { localsOf } = require('./instances.js')

// The store link loads with the first breaker that has a store (most have none): cold start.
let link = null
const linkStore = (store, b) => (link || (link = require('../store/link.js'))).linkStore(store, b)
const storeStatus = (name) => (link === null ? null : link.storeStatus(name))
// getStats() reads native numbers into this one buffer (made once the binary has said how long
// a row is), not into a new array per call (see stats_into in src/lib.rs).
let STATS_BUF = null

class Control {
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
    if (STATS_BUF === null) STATS_BUF = new Float64Array(S.STATS_LEN)
    native.statsInto(this._cid, STATS_BUF)
    // Read out before _sync: a listener it calls may read another circuit's stats into the buffer.
    const stats = statsObject(this.name, STATS_BUF, 0, this._enabled)
    this._sync(before)
    return stats
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

module.exports = { Control, statsObject, linkStore }
