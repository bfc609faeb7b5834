'use strict'
// Transitions and events: native code records every transition of a circuit (with a sequence
// number); each instance of the circuit in a thread delivers them to its listeners, and the
// instance whose own native call made one logs it (once for the whole process) and tells the
// store. The listeners of an instance, its logger and `on()`.

const S = require('../shared.js')
const { native } = S
const options = require('../options.js')
const { localsOf, listenToOtherThreads } = require('./instances.js')

const EVENTS = ['stateChange', 'open', 'halfOpen', 'close', 'success', 'failure', 'reject', 'timeout', 'fallback']
// Events that need every call to take the general path (transition events do not).
const PER_CALL_EVENTS = new Set(['success', 'failure', 'reject', 'timeout', 'fallback'])
// Transition events reach instances in other threads at once (see listenToOtherThreads).
const TRANSITION_EVENTS = new Set(['stateChange', 'open', 'halfOpen', 'close'])

class Events {
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
}

module.exports = { Events, EVENTS, PER_CALL_EVENTS }
