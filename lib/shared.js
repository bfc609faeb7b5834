'use strict'
// The native binding and the shared memory it exposes, set up by their first use (the first
// breaker, registry call or stats read), not at import: opening the binary costs ~1 ms and
// ~1.3 MiB of resident memory (its image and the pages of node's symbol tables that the
// dynamic linker reads to bind it), which an import that makes no breaker yet (a Lambda
// function's init, a module that only exports a wrapper) need not pay.
//
// `native` is this module's stand-in for the binding, the same object from import on, so the
// modules that use it keep it in a constant. Until the binary is loaded its prototype is a
// Proxy whose every read loads it; from then on its prototype is the binding itself, and a
// method read is an ordinary prototype-chain load (no check per call). The layout numbers,
// CLOCK and REASONS are properties of this module, set by the load; a module that keeps
// any of them in a variable of its own sets it in a whenLoaded callback.
//
// Every thread maps the process's arena of slots (see crates/core/src/arena.rs) as Int32Array
// chunks. The views are cached on globalThis, so a module instance loaded twice in one thread
// (a cleared require cache, CJS next to ESM) maps each chunk once: V8 does not allow two
// ArrayBuffers over the same external memory in one isolate.

let binding = null
const loaded = []

/** Loads the binary (once) and sets up what is read from it; returns the binding. */
function load() {
  if (binding !== null) return binding
  const b = require('./native.js')
  ;[
    S.SLOT_I32, S.SLOTS_PER_CHUNK, S.CLOCK_F64, S.MODE, S.NEXT_ATTEMPT, S.SEQ,
    S.OK, S.IGNORED, S.REJECTED, S.FALLBACK, S.RING_HEAD, S.RING_TAIL, S.RING, S.RING_LEN, S.STATS_LEN,
    S.BUDGET, S.FAIL, S.FAIL_AT_OK, S.LAST_FAIL,
  ] = b.layout()
  S.REASONS = b.reasons()
  binding = b
  Object.setPrototypeOf(native, b)
  CLOCK = S.CLOCK = f64(0)
  CLOCK_F64 = S.CLOCK_F64
  for (const f of loaded.splice(0)) f()
  return b
}

const native = Object.create(new Proxy(Object.create(null), {
  get: (_, key) => load()[key],
  has: (_, key) => key in load(),
}))

/** Calls `f` once the binary is loaded (now, if it is). */
function whenLoaded(f) {
  if (binding !== null) f()
  else loaded.push(f)
}

const KEY = Symbol.for('breakwater.sharedViews.v1')
const views = globalThis[KEY] || (globalThis[KEY] = { i32: [], f64: [] })

function i32(chunk) {
  let v = views.i32[chunk]
  if (v === undefined) {
    v = native.chunk(chunk)
    views.i32[chunk] = v
    views.f64[chunk] = new Float64Array(v.buffer, v.byteOffset, v.length >> 1)
    // Each Int32Array view carries its Float64Array twin (every chunk's view the same shape),
    // so a breaker keeps one view of its circuit and one of its lane, not two of each.
    v.f64 = views.f64[chunk]
  }
  return v
}

function f64(chunk) {
  i32(chunk)
  return views.f64[chunk]
}

// The coarse clock (circuit-clock ms: monotonic, not epoch, see crates/core/src/ticker.rs;
// written every few ms by a native thread; +Infinity while that thread sleeps because nothing
// used it): CLOCK[CLOCK_F64], set by load().
let CLOCK = null
let CLOCK_F64 = 0

// Values of a circuit's mode word.
const M_CLOSED = 0
const M_OPEN = 1
const M_HALF_OPEN = 2
const M_CLOSED_EAGER = 3
const M_FORCED_OPEN = 4
const M_DISPOSED = 5

const STATE_NAMES = ['CLOSED', 'OPEN', 'HALF_OPEN']

/** Circuit-clock ms from the coarse clock, or exactly when the clock thread is asleep. */
function coarseNow() {
  const t = CLOCK[CLOCK_F64]
  return t === Infinity ? native.now() : t
}

// The layout numbers (indexes into a chunk, from native.layout()), CLOCK and REASONS are set
// by load(); nothing reads them before a native call. The numbers start as 0, not undefined:
// a field that only ever holds small integers stays one to V8, and reading it needs no check.
const S = module.exports = {
  native, load, whenLoaded, i32, f64, coarseNow,
  SLOT_I32: 0, SLOTS_PER_CHUNK: 0, CLOCK_F64: 0, MODE: 0, NEXT_ATTEMPT: 0, SEQ: 0, OK: 0,
  IGNORED: 0, REJECTED: 0, FALLBACK: 0, RING_HEAD: 0, RING_TAIL: 0, RING: 0, RING_LEN: 0,
  STATS_LEN: 0, BUDGET: 0, FAIL: 0, FAIL_AT_OK: 0, LAST_FAIL: 0, CLOCK: null, REASONS: null,
  M_CLOSED, M_OPEN, M_HALF_OPEN, M_CLOSED_EAGER, M_FORCED_OPEN, M_DISPOSED, STATE_NAMES,
}
