'use strict'
// The bridge between a circuit and a shared store (PRODUCT.md, "Shared state").
//
// The rule: the user's call never waits on the store, with two bounded exceptions. Nothing here
// runs on the hot path: a breaker with a store has the same fast path as one without.
// - Decisions go out at once: a transition this process made (its breaker logged it) is saved
//   in the background; a save that fails is retried on the next sync.
// - Decisions come in by push (a store with subscribe(), e.g. Redis pub/sub) and by a pull
//   every `syncIntervalMs` (one unref'd timer per store per thread, not per breaker). A Lambda
//   environment thawed after an hour runs that overdue timer on its first turn of the event
//   loop, so it catches up without blocking the call that woke it.
// - Counts: a store with merge() adds this process's calls, failures and slow calls to the
//   fleet's per-bucket counters every sync and gets the fleet's window back; a CLOSED circuit
//   trips (reason fleetFailureRate / fleetSlowCallRate) when the fleet's window meets the
//   same rule a local window is held to. Counts belong to a "generation" (the time the fleet
//   last closed the circuit), so failures from before a recovery never re-trip it.
// - Conflicts: last writer wins by `stateChangedAt` (the store refuses an older snapshot); a
//   remote decision older than this process's own newest one is not applied.
// - Waits: the first execute waits for the initial load (at most `loadTimeoutMs`); a HALF_OPEN
//   probe waits for the fleet-wide permit (at most `loadTimeoutMs`; no answer → local rules).
// - Failures of the store: the breaker runs on local state; `stats.store` says
//   `healthy: false` with the last error, and the next successful sync says it recovered.

const S = require('../shared.js')
const { native } = S
const { storeTimings } = require('../options.js')
const STATE_CODE = { CLOSED: 0, OPEN: 1, HALF_OPEN: 2 }

/** One per store object per thread: the timer and the circuits that use the store. */
class StoreSync {
  constructor(store) {
    this.store = store
    this.kind = typeof store.kind === 'string' ? store.kind : 'custom'
    const { syncIntervalMs, loadTimeoutMs } = storeTimings(store) // checked by options.js already
    this.syncIntervalMs = syncIntervalMs
    this.loadTimeoutMs = loadTimeoutMs
    this.links = new Map() // name → Link
    this.timer = null
  }

  link(breaker) {
    let l = this.links.get(breaker.name)
    if (l === undefined || l.cid !== breaker._cid) {
      if (l !== undefined) l.close()
      l = new Link(this, breaker)
      this.links.set(breaker.name, l)
      statusByName.set(breaker.name, l.status)
      l.start()
    } else {
      l.add(breaker)
    }
    if (this.timer === null) {
      this.timer = setInterval(() => this.tick(), this.syncIntervalMs)
      this.timer.unref()
    }
    return l
  }

  tick() {
    for (const [name, l] of this.links) {
      if (l.live() === undefined) {
        l.close()
        this.links.delete(name)
        if (statusByName.get(name) === l.status) statusByName.delete(name)
        continue
      }
      l.sync()
    }
    if (this.links.size === 0) {
      clearInterval(this.timer)
      this.timer = null
    }
  }
}

const syncs = new WeakMap() // store → StoreSync
const statusByName = new Map() // name → the status object of the link serving it in this thread

/** Connects `breaker` (just attached to its circuit) to `store`; returns its Link. */
function linkStore(store, breaker) {
  let s = syncs.get(store)
  if (s === undefined) syncs.set(store, (s = new StoreSync(store)))
  return s.link(breaker)
}

/** `stats.store` for circuit `name` in this thread: a copy, or null without a store. */
function storeStatus(name) {
  if (statusByName.size === 0) return null
  const s = statusByName.get(name)
  if (s === undefined) return null
  return { kind: s.kind, healthy: s.healthy, lastError: s.lastError, lastSyncAt: s.lastSyncAt, fleetWindow: s.fleetWindow === null ? null : { ...s.fleetWindow } }
}

/** Resolves with the promise's value, or rejects after `ms` (a ref'd timer: the wait is real). */
function within(p, ms, what) {
  if (!(ms > 0)) return Promise.reject(Object.assign(new Error(`${what}: no time allowed (loadTimeoutMs is 0)`), { code: 'BREAKWATER_STORE_TIMEOUT' }))
  let timer
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`${what} took longer than ${ms} ms`), { code: 'BREAKWATER_STORE_TIMEOUT' })), ms)
  })
  return Promise.race([p, t]).finally(() => clearTimeout(timer))
}

/** Calls a store method; a sync throw becomes a rejection. */
function call(store, method, ...args) {
  try {
    return Promise.resolve(store[method](...args))
  } catch (e) {
    return Promise.reject(e)
  }
}

class Link {
  constructor(sync, breaker) {
    this.owner = sync
    this.store = sync.store
    this.name = breaker.name
    this.cid = breaker._cid
    const o = breaker._o
    this.o = o
    this.refs = new Set()
    this.add(breaker)
    this.status = { kind: sync.kind, healthy: true, lastError: null, lastSyncAt: null, fleetWindow: null }
    /** The newest stateChangedAt known to be in the store (saved or read). */
    this.seen = 0
    /** When this process last changed the circuit's state itself (not from the store). */
    this.ownAt = 0
    /** The fleet's counting generation: stateChangedAt of the fleet's last CLOSED decision. */
    this.gen = 0
    this.dirty = false
    this.saveLoop = null
    this.busy = false
    this.loading = null
    this.pending = [0, 0, 0]
    this.pendingSince = 0
    this.unsubscribe = null
    this.closed = false
    this.lastRaw = null
    const tw = o.window.type === 'time'
    this.bucketMs = tw ? o.window.durationMs / o.window.buckets : 0
    this.buckets = tw ? o.window.buckets : 0
    this.merges = tw && typeof this.store.merge === 'function'
    this.gatesProbes = typeof this.store.tryAcquireProbe === 'function'
    // A probe permit outlives the probe only if its holder crashed: then it expires after the
    // longest a probe may take.
    this.probeTtlMs = Math.max(o.timeout, o.halfOpenTimeout) || o.resetTimeout || 30_000
  }

  add(breaker) {
    this.refs.add(new WeakRef(breaker))
  }

  /** A live, not disposed instance of the circuit in this thread, or undefined. */
  live() {
    for (const r of this.refs) {
      const b = r.deref()
      if (b === undefined) this.refs.delete(r)
      else if (!b._disposed) return b
    }
    return undefined
  }

  start() {
    const store = this.store
    if (typeof store.subscribe === 'function') {
      try {
        const un = store.subscribe(this.name, (snap) => this.apply(snap))
        if (typeof un === 'function') this.unsubscribe = un
      } catch (e) {
        this.failed(e)
      }
    }
    if (typeof store.loadSync === 'function') {
      // A local file: read now, so a restarted process starts in the saved state.
      let snap = null
      try {
        snap = store.loadSync(this.name)
        this.ok()
      } catch (e) {
        this.failed(e, 'load')
      }
      this.apply(snap)
      return
    }
    const load = call(store, 'load', this.name).then(
      (snap) => {
        this.ok()
        this.apply(snap)
      },
      (e) => this.failed(e, 'load'),
    )
    if (!(this.owner.loadTimeoutMs > 0)) return
    this.loading = within(load, this.owner.loadTimeoutMs, `store.load('${this.name}')`).catch((e) => this.failed(e, 'load'))
    this.loading.then(() => {
      this.loading = null
      for (const r of this.refs) {
        const b = r.deref()
        if (b !== undefined && b._loading !== null) {
          b._loading = null
          b._refreshFast()
        }
      }
    })
  }

  close() {
    this.closed = true
    if (this.unsubscribe !== null) {
      try {
        this.unsubscribe()
      } catch {
        // the store is going away anyway
      }
      this.unsubscribe = null
    }
  }

  ok() {
    const s = this.status
    s.lastSyncAt = Date.now()
    if (!s.healthy) {
      s.healthy = true
      const b = this.live()
      if (b !== undefined) b._log('info', `[breakwater] store (${s.kind}) of '${this.name}' is reachable again; sharing state`)
    }
  }

  failed(e, what = 'sync') {
    const s = this.status
    const raw = (e && e.message) || String(e)
    const msg = `${what}: ${raw}`
    const repeat = this.lastRaw === raw
    this.lastRaw = raw
    s.lastError = msg
    const was = s.healthy
    s.healthy = false
    // One line when the store goes away (not one per sync while it stays away), and one for
    // each new corrupt or foreign record, which someone has to look at.
    if (was || (e && e.code === 'BREAKWATER_STORE_CORRUPT' && !repeat)) {
      const b = this.live()
      if (b !== undefined) b._log('warn', `[breakwater] store (${s.kind}) of '${this.name}' failed (${msg}); running on local state`)
    }
  }

  // ---- decisions in ----------------------------------------------------------------------

  /** Applies a snapshot read from the store, if it is newer than what this process knows. */
  apply(snap) {
    if (snap === null || snap === undefined || this.closed) return
    if (typeof snap !== 'object' || !(snap.state in STATE_CODE)) {
      this.failed(Object.assign(new Error(`ignored a snapshot that is not one (state ${JSON.stringify(snap && snap.state)})`), { code: 'BREAKWATER_STORE_CORRUPT' }), 'load')
      return
    }
    const at = Number(snap.stateChangedAt) || 0
    if (snap.state === 'CLOSED' && at > this.gen) this.gen = at
    if (at <= this.seen) return
    this.seen = at
    if (at <= this.ownAt) return // this process decided something newer itself
    const b = this.live()
    if (b === undefined) return
    const mode = Atomics.load(b._C, b._ci)
    const local = b._modeState(mode)
    const forced = snap.forced === true
    const next = typeof snap.nextAttemptAt === 'number' ? snap.nextAttemptAt : NaN
    // Shared memory holds nextAttemptAt on the circuit clock; snapshots hold epoch ms.
    const sameOpen = local === 'OPEN' && (mode === S.M_FORCED_OPEN) === forced && (forced || b._CF[b._nextAt] + native.wallOffset() === next)
    if (snap.state === local && (local !== 'OPEN' || sameOpen)) return
    const before = b._seqNow()
    try {
      native.storeApply(this.cid, STATE_CODE[snap.state], forced, next)
    } catch {
      return // disposed meanwhile
    }
    b._sync(before)
  }

  // ---- decisions out ---------------------------------------------------------------------

  /** This process changed the circuit's state at `at` (epoch ms): publish it. */
  ownTransition(at, to) {
    if (at > this.ownAt) this.ownAt = at
    if (to === 'CLOSED' && at > this.gen) this.gen = at
    this.save()
  }

  save() {
    this.dirty = true
    if (this.saveLoop === null) this.saveLoop = this.saveAll()
  }

  async saveAll() {
    await null // out of the caller's stack: it may be in the middle of delivering events
    while (this.dirty && !this.closed) {
      this.dirty = false
      const b = this.live()
      if (b === undefined) break
      const snap = b.toJSON()
      try {
        await call(this.store, 'save', this.name, snap)
        if (snap.stateChangedAt > this.seen) this.seen = snap.stateChangedAt
        this.ok()
      } catch (e) {
        this.failed(e, 'save')
      }
    }
    this.saveLoop = null
  }

  // ---- probes ----------------------------------------------------------------------------

  /** Resolves true if this process may run its probe (fleet permit, or no answer in time). */
  acquireProbe() {
    const asked = call(this.store, 'tryAcquireProbe', this.name, { ttlMs: this.probeTtlMs, max: this.o.halfOpenMaxRequests })
    return within(asked, this.owner.loadTimeoutMs, `store.tryAcquireProbe('${this.name}')`).then(
      (got) => {
        this.ok()
        return got !== false
      },
      (e) => {
        this.failed(e, 'tryAcquireProbe')
        return true // the store cannot answer: local rules decide
      },
    )
  }

  /** A probe settled: give its permit back once the decision it led to has been saved. */
  probeDone() {
    if (typeof this.store.releaseProbe !== 'function') return
    Promise.resolve()
      .then(() => this.saveLoop)
      .then(() => call(this.store, 'releaseProbe', this.name))
      .catch((e) => this.failed(e, 'releaseProbe'))
  }

  // ---- the periodic sync -----------------------------------------------------------------

  async sync() {
    if (this.busy || this.closed) return
    this.busy = true
    try {
      if (this.ownAt > this.seen) this.save() // a decision the store has not got yet
      const work = [call(this.store, 'load', this.name)]
      if (this.merges) work.push(this.merge())
      const [snap] = await Promise.all(work)
      this.ok()
      this.apply(snap)
    } catch (e) {
      this.failed(e)
    } finally {
      this.busy = false
    }
  }

  /** Adds this process's counts to the fleet's window and trips on the fleet's rate. */
  async merge() {
    const b = this.live()
    if (b === undefined) return
    let d
    try {
      d = native.takeCounts(this.cid)
    } catch {
      return
    }
    const closed = b._modeState(Atomics.load(b._C, b._ci)) === 'CLOSED'
    const p = this.pending
    const now = performance.now() // a duration: monotonic, whatever the wall clock does
    // Counts that could not be merged (the store was down) wait for the next sync, but not
    // longer than a window: older ones would land in a bucket they do not belong to.
    if (p[0] === 0 || now - this.pendingSince > this.bucketMs * this.buckets) {
      p[0] = p[1] = p[2] = 0
      this.pendingSince = now
    }
    if (closed) {
      p[0] += d[0]
      p[1] += d[1]
      p[2] += d[2]
    } else {
      // Calls settled while OPEN or HALF_OPEN are probes and stragglers: no fleet window holds them.
      p[0] = p[1] = p[2] = 0
    }
    const fleet = await this.store.merge(this.name, {
      generation: this.gen,
      bucketMs: this.bucketMs,
      buckets: this.buckets,
      epoch: Math.floor(now / this.bucketMs),
      calls: p[0],
      failures: p[1],
      slowCalls: p[2],
    })
    p[0] = p[1] = p[2] = 0
    if (fleet === null || typeof fleet !== 'object') return
    const w = { calls: +fleet.calls || 0, failures: +fleet.failures || 0, slowCalls: +fleet.slowCalls || 0 }
    this.status.fleetWindow = w
    this.checkFleet(w)
  }

  checkFleet(w) {
    const b = this.live()
    if (b === undefined || w.calls === 0 || w.calls < this.o.minimumRequests) return
    if (b._modeState(Atomics.load(b._C, b._ci)) !== 'CLOSED') return
    const o = this.o
    const slow = o.slowCallRateThreshold > 0 && w.slowCalls / w.calls >= o.slowCallRateThreshold
    if (!(w.failures / w.calls >= o.failureThreshold) && !slow) return
    const before = b._seqNow()
    try {
      native.storeTrip(this.cid, !(w.failures / w.calls >= o.failureThreshold))
    } catch {
      return
    }
    b._sync(before)
  }
}

module.exports = { linkStore, storeStatus }
