'use strict'
// Per-call timeouts without a timer per call.
//
// A setTimeout + clearTimeout pair costs ~450 ns, more than the whole breaker. Calls with the
// same timeout value have their deadlines in the order the calls start, so a FIFO queue of
// them is already sorted. One queue per timeout value serves every breaker of the thread (not
// one per breaker: a process with a breaker per tenant would otherwise keep a Timeout, a queue
// and the last settled call per breaker, ~500 B each, and thousands of armed timers). One
// unref'd timer waits for the oldest deadline; calls that settle are only marked done and drop
// off the queue's head as it advances. The timer is unref'd, so pending deadlines never keep a
// process alive.
//
// Deadlines are on process.hrtime(), in ms: monotonic (a wall-clock step, forward or back,
// moves none of them) and the clock libuv's timers run on (CLOCK_MONOTONIC, which keeps
// counting while the process is stopped or frozen, so a call overdue at a thaw times out at
// once). Not performance.now(), which reads the same clock at the same cost (~55 ns here) but
// whose first use loads perf_hooks and ten internal modules (~2 ms of a cold start).
const hrtime = process.hrtime

/** Monotonic milliseconds (fractional), from an arbitrary origin. */
function monoNow() {
  const t = hrtime()
  return t[0] * 1e3 + t[1] / 1e6
}

// The queues of this thread by timeout value. A queue leaves the map when it drains, so timeouts
// computed per call (from a Lambda's remaining time, say) leave nothing behind; a breaker keeps
// the queue of its own timeout (see deadlinesFor's callers), which only costs a second queue
// for that value should the map have dropped it meanwhile.
const queues = new Map()

/** The queue of calls with a timeout of `timeoutMs`. */
function deadlinesFor(timeoutMs) {
  let q = queues.get(timeoutMs)
  if (q === undefined) {
    q = new Deadlines(timeoutMs)
    queues.set(timeoutMs, q)
  }
  return q
}

class Deadlines {
  constructor(timeoutMs) {
    this.timeoutMs = timeoutMs
    this.queue = []
    this.head = 0
    this.live = 0
    this.timer = null
    this.fire = this.fire.bind(this)
  }

  /**
   * `call` needs `deadline` (monoNow() ms), `done` (false until it settles) and `owner` (told
   * by `_expire(call)` when the deadline passes first).
   */
  add(call) {
    const q = this.queue
    // Calls mostly finish in the order they started: settled ones at the head go now, their
    // slots cleared (a settled call holds its fallback, perhaps of a breaker disposed since,
    // and must not stay reachable until the timer comes by). The queue moves on to a fresh
    // array now and then rather than reusing its slots: a young call stored into a long-lived
    // array costs a remembered-set entry (~300 instructions a call measured), into a young one
    // nothing.
    while (this.head < q.length && q[this.head].done) q[this.head++] = undefined
    if (this.head > 1024 && this.head * 2 > q.length) {
      this.queue = q.slice(this.head)
      this.head = 0
    }
    this.queue.push(call)
    this.live++
    if (this.timer === null) this.arm(call.deadline)
  }

  /** A call settled before its deadline. */
  settled() {
    // Nothing left in flight (in an awaited loop, at every call): no settled call stays.
    if (--this.live === 0) this.empty()
    // One hung call at the head must not let thousands of settled ones pile up behind it.
    const q = this.queue
    if (q.length - this.head > 2048 && q.length - this.head > 4 * this.live) {
      this.queue = q.slice(this.head).filter((c) => !c.done)
      this.head = 0
    }
  }

  /** Every call has settled: their slots are cleared. */
  empty() {
    const q = this.queue
    for (let i = this.head; i < q.length; i++) q[i] = undefined
    this.head = q.length
  }

  arm(deadline) {
    // (a call added by an expiry's fallback, during fire(), may have armed one already)
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = setTimeout(this.fire, Math.max(1, deadline - monoNow()))
    if (typeof this.timer.unref === 'function') this.timer.unref()
  }

  fire() {
    this.timer = null
    const now = monoNow()
    const q = this.queue
    // The queue serves every breaker of the thread: should one call's expiry throw, the others
    // still expire and the timer is still re-armed; the first error is thrown after that.
    let failed = null
    while (this.head < q.length) {
      const c = q[this.head]
      if (!c.done && c.deadline > now) break
      this.head++
      if (!c.done) {
        c.done = true
        this.live--
        try {
          c.owner._expire(c)
        } catch (e) {
          if (failed === null) failed = { e }
        }
      }
    }
    if (this.head === q.length) {
      this.queue = []
      this.head = 0
      if (queues.get(this.timeoutMs) === this) queues.delete(this.timeoutMs)
    } else {
      this.arm(q[this.head].deadline)
    }
    if (failed !== null) throw failed.e
  }
}

module.exports = { deadlinesFor, monoNow }
