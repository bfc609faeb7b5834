'use strict'
// Per-call timeouts without a timer per call.
//
// A setTimeout + clearTimeout pair costs ~450 ns, more than the whole breaker. All calls of
// one breaker share one timeout value, so their deadlines come in the order the calls start:
// a FIFO queue is already sorted. One unref'd timer waits for the oldest deadline; calls that
// settle are only marked done and drop off the queue's head as it advances. The timer is
// unref'd, so pending deadlines never keep a process alive.
//
// Deadlines are on performance.now(): monotonic (a wall-clock step, forward or back, moves
// none of them) and the clock libuv's timers run on (CLOCK_MONOTONIC, which keeps counting
// while the process is stopped or frozen, so a call overdue at a thaw times out at once). Its
// origin is per thread; a queue and its calls always live in one thread. Called bound: the
// `performance.now` property lookup and brand check cost more than the clock read.
const monoNow = performance.now.bind(performance)

class Deadlines {
  /** @param {{ _expire(call: object): void }} owner told of each call whose deadline passed */
  constructor(owner) {
    this.queue = []
    this.head = 0
    this.live = 0
    this.timer = null
    // the breaker itself, not a closure over it: one object less per breaker
    this.owner = owner
    this.fire = this.fire.bind(this)
  }

  /** `call` needs `deadline` (monoNow() ms) and `done` (false until it settles). */
  add(call) {
    const q = this.queue
    // Calls mostly finish in the order they started: settled ones at the head go now.
    while (this.head < q.length && q[this.head].done) this.head++
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
    this.live--
    // One hung call at the head must not let thousands of settled ones pile up behind it.
    const q = this.queue
    if (q.length - this.head > 2048 && q.length - this.head > 4 * this.live) {
      this.queue = q.slice(this.head).filter((c) => !c.done)
      this.head = 0
    }
  }

  arm(deadline) {
    this.timer = setTimeout(this.fire, Math.max(1, deadline - monoNow()))
    if (typeof this.timer.unref === 'function') this.timer.unref()
  }

  fire() {
    this.timer = null
    const now = monoNow()
    const q = this.queue
    while (this.head < q.length) {
      const c = q[this.head]
      if (!c.done && c.deadline > now) break
      this.head++
      if (!c.done) {
        c.done = true
        this.live--
        this.owner._expire(c)
      }
    }
    if (this.head === q.length) {
      this.queue = []
      this.head = 0
    } else {
      this.arm(q[this.head].deadline)
    }
  }
}

module.exports = { Deadlines, monoNow }
