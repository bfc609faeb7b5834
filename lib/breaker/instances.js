'use strict'
// The breakers of one thread: which instances are attached to which circuit, the thread's lane
// of each circuit, the names of disabled instances, and the names of circuits by serial (for
// module-level stats). Instances are held weakly, and what a collected instance leaves behind
// (its registry entries, its lane) goes with it.

const { native } = require('../shared.js')
// Breakers of this thread, for events and getCircuitBreaker(). Held weakly: the common
// "new CircuitBreaker({ name }) per Lambda invocation" pattern must not pile up instances.
const byName = new Map() // name -> WeakRef<CircuitBreaker>
// One lane per circuit per thread, shared by that thread's instances of the circuit: native
// decisions drain every lane, so their number must follow threads, not instances. A lane is
// detached when the last instance using it has been collected. The lane's record also holds
// those instances (`refs`): one WeakRef, or a Set of them when there are several (a Set and a
// second map entry per circuit were ~200 B a breaker, for the rare circuit with two).
const threadLanes = new Map() // circuit id -> { id, chunk, base, bucketEnd, users, refs, name, cid }
// When an instance is collected, the token is its lane's record (no object per instance): the
// lane's refs and byName are pruned of dead WeakRefs, which deref() to undefined by then. A
// disabled instance registers in a second registry so that its name's count goes down too.
const collected = new FinalizationRegistry(release)
const collectedOff = new FinalizationRegistry((lane) => {
  const n = disabled.get(lane.name) - 1
  if (n > 0) disabled.set(lane.name, n)
  else disabled.delete(lane.name)
  release(lane)
})

function release(lane) {
  const r = byName.get(lane.name)
  if (r !== undefined && r.deref() === undefined) byName.delete(lane.name)
  if (lane.refs instanceof Set) {
    for (const ref of lane.refs) if (ref.deref() === undefined) lane.refs.delete(ref)
  } else if (lane.refs !== null && lane.refs.deref() === undefined) {
    lane.refs = null
  }
  if (--lane.users === 0) {
    if (threadLanes.get(lane.cid) === lane) threadLanes.delete(lane.cid)
    try {
      native.detach(lane.id)
    } catch {
      // already gone
    }
  }
}

function laneFor(cid, name) {
  let lane = threadLanes.get(cid)
  if (lane === undefined) {
    const l = native.newLane(cid)
    lane = { id: l.laneId, chunk: l.laneChunk, base: l.laneBase, bucketEnd: l.bucketEnd, users: 0, refs: null, name, cid }
    threadLanes.set(cid, lane)
  }
  lane.users++
  return lane
}

function track(b) {
  const ref = new WeakRef(b)
  const lane = b._laneRec
  if (lane.refs === null) lane.refs = ref
  else if (lane.refs instanceof Set) lane.refs.add(ref)
  else lane.refs = new Set([lane.refs, ref])
  const first = byName.get(b.name)
  if (first === undefined || first.deref() === undefined || first.deref()._disposed) byName.set(b.name, ref)
  // Every thread hears of other threads' transitions, so its handlers follow the generation.
  listenToOtherThreads()
  if (b._enabled) {
    collected.register(b, lane)
  } else {
    disabled.set(b.name, (disabled.get(b.name) || 0) + 1)
    collectedOff.register(b, lane)
  }
}

/** Live breakers of this thread attached to circuit `cid`. */
function localsOf(cid) {
  const out = []
  const lane = threadLanes.get(cid)
  if (lane === undefined || lane.refs === null) return out
  if (lane.refs instanceof Set) {
    for (const r of lane.refs) {
      const b = r.deref()
      if (b !== undefined) out.push(b)
    }
  } else {
    const b = lane.refs.deref()
    if (b !== undefined) out.push(b)
  }
  return out
}

// Names of this thread's breakers made with `enabled: false` (stats report it per name).
const disabled = new Map() // name -> count of live disabled instances

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

// Transitions reach instances in other threads at once: the first breaker (or transition
// listener) of a thread registers a (weak) native callback that native code calls with the
// circuit id whenever any thread changes a circuit's state.
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

/** Delivers pending transitions to every live breaker of this thread (after a stats read). */
function syncAll() {
  for (const cid of threadLanes.keys()) for (const b of localsOf(cid)) b._sync()
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

module.exports = { laneFor, track, localsOf, isEnabled, localNamed, listenToOtherThreads, syncAll, nameOf, pruneNames }
