'use strict'
// The native binding and the shared memory it exposes.
//
// Every thread maps the process's arena of slots (see crates/core/src/arena.rs) as Int32Array
// chunks. The views are cached on globalThis, so a module instance loaded twice in one thread
// (a cleared require cache, CJS next to ESM) maps each chunk once: V8 does not allow two
// ArrayBuffers over the same external memory in one isolate.

const native = require('./native.js')

const [
  SLOT_I32, SLOTS_PER_CHUNK, CLOCK_F64, MODE, NEXT_ATTEMPT, SEQ,
  OK, IGNORED, REJECTED, FALLBACK, RING_HEAD, RING_TAIL, RING, RING_LEN, STATS_LEN,
  BUDGET, FAIL, FAIL_AT_OK, LAST_FAIL,
] = native.layout()

const KEY = Symbol.for('breakwater.sharedViews.v1')
const views = globalThis[KEY] || (globalThis[KEY] = { i32: [], f64: [] })

function i32(chunk) {
  let v = views.i32[chunk]
  if (v === undefined) {
    v = native.chunk(chunk)
    views.i32[chunk] = v
    views.f64[chunk] = new Float64Array(v.buffer, v.byteOffset, v.length >> 1)
  }
  return v
}

function f64(chunk) {
  i32(chunk)
  return views.f64[chunk]
}

// The coarse clock (circuit-clock ms: monotonic, not epoch, see crates/core/src/ticker.rs;
// written every few ms by a native thread; +Infinity while that thread sleeps because nothing
// used it): CLOCK[CLOCK_F64]. native.now() reads the same clock exactly.
const CLOCK = f64(0)

// Values of a circuit's mode word.
const M_CLOSED = 0
const M_OPEN = 1
const M_HALF_OPEN = 2
const M_CLOSED_EAGER = 3
const M_FORCED_OPEN = 4
const M_DISPOSED = 5

const STATE_NAMES = ['CLOSED', 'OPEN', 'HALF_OPEN']
const REASONS = native.reasons()

/** Circuit-clock ms from the coarse clock, or exactly when the clock thread is asleep. */
function coarseNow() {
  const t = CLOCK[CLOCK_F64]
  return t === Infinity ? native.now() : t
}

module.exports = {
  native, i32, f64, CLOCK, CLOCK_F64, coarseNow, SLOT_I32, SLOTS_PER_CHUNK,
  MODE, NEXT_ATTEMPT, SEQ, OK, IGNORED, REJECTED, FALLBACK, RING_HEAD, RING_TAIL, RING, RING_LEN,
  BUDGET, FAIL, FAIL_AT_OK, LAST_FAIL,
  STATS_LEN, M_CLOSED, M_OPEN, M_HALF_OPEN, M_CLOSED_EAGER, M_FORCED_OPEN, M_DISPOSED,
  STATE_NAMES, REASONS,
}
