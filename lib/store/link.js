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
//   same rule a local window is held to. Counts belong to a "generation" (the version of the
//   fleet's last CLOSED decision), so failures from before a recovery never re-trip it.
// - Order: the built-in stores give every saved decision a version, assigned atomically by the
//   store (a Lua script on Redis, a DynamoDB conditional write, a counter under the file
//   lock). A decision is saved unless the store holds a newer one than it was based on (an
//   operator's open()/close()/reset(), and the outcome of a permitted probe, always are); a
//   refused one lost a race, and this process adopts the store's (a trip refused only by a
//   newer CLOSED goes on top of it). A store that lost its data (a restart without persistence)
//   holds nothing until the next decision, from which its versions restart. Remote
//   decisions apply in version order: no host's wall clock orders anything, so a host a day
//   ahead can neither block nor override the fleet. Another host's `nextAttemptAt` is a hint,
//   applied as at most the circuit's open period from now.
//   A custom store without versions keeps the old rule (newest `stateChangedAt` wins).
// - Records are validated before they apply (exact state names, times and versions in range);
//   a bad one is ignored, logged once, and never stops a later good one.
// - Waits: the first execute waits for the initial load (at most `loadTimeoutMs`); a HALF_OPEN
//   probe waits for the fleet-wide permit (at most `loadTimeoutMs`; no answer -> local rules).
// - Failures of the store: the breaker runs on local state; `stats.store` says
//   `healthy: false` with the last error, and the next successful sync says it recovered.

const S = require('../shared.js')
const { native } = S
const { storeTimings } = require('../options.js')
const STATE_CODE = { __proto__: null, CLOSED: 0, OPEN: 1, HALF_OPEN: 2 }
// Operators' decisions are saved whatever the store holds: they are the newest word by intent.
const MANUAL = new Set(['forcedOpen', 'manualOpen', 'manualClose', 'manualHalfOpen', 'reset'])
const MIN_TIME = Date.UTC(2000, 0, 1)
const MAX_TIME = Date.UTC(2200, 0, 1)
const MAX_VERSION = 2 ** 48
const MAX_BAD_KEPT = 64

/** Why `rec` (a record read from a store for circuit `name`) is not a valid snapshot, or null. */
function invalid(rec, name) {
  if (typeof rec !== 'object' || Array.isArray(rec)) return 'not an object'
  const { state, forced, nextAttemptAt, stateChangedAt, version } = rec
  if (typeof state !== 'string' || !(state in STATE_CODE)) return `state ${typeof state === 'string' ? JSON.stringify(state.slice(0, 20)) : typeof state} is not CLOSED, OPEN or HALF_OPEN`
  if (rec.name !== undefined && rec.name !== name) return 'it names another circuit'
  if (forced !== undefined && typeof forced !== 'boolean') return 'forced is not a boolean'
  if (!(typeof stateChangedAt === 'number' && stateChangedAt >= MIN_TIME && stateChangedAt <= MAX_TIME)) return 'stateChangedAt is not a time between 2000 and 2200'
  if (nextAttemptAt !== null && nextAttemptAt !== undefined && !(typeof nextAttemptAt === 'number' && nextAttemptAt >= MIN_TIME && nextAttemptAt <= MAX_TIME)) return 'nextAttemptAt is not a time between 2000 and 2200'
  if (state === 'OPEN' && forced !== true && typeof nextAttemptAt !== 'number') return 'an OPEN record without nextAttemptAt'
  if (version !== undefined && !(Number.isSafeInteger(version) && version >= 1 && version <= MAX_VERSION)) return 'version is not an integer from 1 to 2^48'
  return null
}

/** One per store object per thread: the timer and the circuits that use the store. */
class StoreSync {
  constructor(store) {
    this.store = store
    this.kind = typeof store.kind === 'string' ? store.kind : 'custom'
    const { syncIntervalMs, loadTimeoutMs } = storeTimings(store) // checked by options.js already
    this.syncIntervalMs = syncIntervalMs
    this.loadTimeoutMs = loadTimeoutMs
    // The longest a background exchange (a sync, a save) may take before it counts as failed.
    this.backgroundMs = 2 * Math.max(syncIntervalMs, loadTimeoutMs)
    this.links = new Map() // name -> Link
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

const syncs = new WeakMap() // store -> StoreSync
const gone = new FinalizationRegistry(({ link, r }) => link.refs.delete(r))
const statusByName = new Map() // name -> the status object of the link serving it in this thread

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

/**
 * Resolves with the promise's value, or rejects after `ms`: a ref'd timer when a call waits
 * (the wait is real), an unref'd one for background work (it must not hold the process open).
 */
function within(p, ms, what, background = false) {
  if (!(ms > 0)) return Promise.reject(Object.assign(new Error(`${what}: no time allowed (loadTimeoutMs is 0)`), { code: 'BREAKWATER_STORE_TIMEOUT' }))
  let timer
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`${what} took longer than ${ms} ms`), { code: 'BREAKWATER_STORE_TIMEOUT' })), ms)
    if (background) timer.unref()
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
    /** The newest version known to be in the store (saved or read); 0: none yet. */
    this.version = 0
    /** A store without versions: the newest stateChangedAt known to be in it. */
    this.seen = 0
    /**
     * When (performance.now()) the last successful load started: any decision newer than the one
     * it returned was made after that moment, which bounds how old a newly seen record can be.
     */
    this.loadedAt = -Infinity
    /** When this process last changed the circuit's state itself (not from the store). */
    this.ownAt = 0
    /** The fleet's counting generation: the version of the fleet's last CLOSED decision. */
    this.gen = 0
    this.dirty = false
    this.force = false // the decision to save is an operator's, or a permitted probe's outcome
    this.permitted = false // this process holds a probe permit the store granted
    this.unsaved = false // a save failed: retried on the next sync
    this.unsavedAt = 0 // when it first failed (performance.now())
    this.savedTriedAt = -Infinity // when a save was last sent
    this.deferred = null // a record that came in while a save was under way
    this.bad = new Set() // bad records already logged (circuit + record)
    this.seqSeen = -1 // the circuit's transition count when this link last applied, decided or pulled
    this.elsewhereAt = -Infinity // when another thread last decided on the circuit (performance.now())
    this.badRecordSeen = false
    this.unreachable = false
    this.saveLoop = null
    this.busy = false
    this.loading = null
    this.pending = [0, 0, 0]
    this.pendingSince = 0
    this.unsubscribe = null
    this.closed = false
    this.lastRaw = null
    const bo = o.resetBackoff
    // The longest open period this circuit can have: another host's nextAttemptAt is at most this far away.
    this.maxOpenMs = Math.max(o.resetTimeout, (bo && bo.maxMs) || 0)
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
    // Instances come and go while one lives on: each one's reference leaves the set when it is
    // collected, so the set follows the live instances.
    const r = new WeakRef(breaker)
    this.refs.add(r)
    gone.register(breaker, { link: this, r })
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
      const t0 = performance.now()
      try {
        snap = store.loadSync(this.name)
        this.ok()
      } catch (e) {
        this.failed(e, 'load')
      }
      this.apply(snap, true)
      this.seqSeen = this.circuitSeq()
      if (this.status.healthy) this.loadedAt = t0 // nothing there is an answer too
      return
    }
    const t0 = performance.now()
    const load = call(store, 'load', this.name).then(
      (snap) => {
        this.ok()
        this.apply(snap, true)
        this.seqSeen = this.circuitSeq()
        this.loadedAt = t0
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

  // stats.store.healthy = the store answers (not `unreachable`) and what it holds for this
  // circuit is a valid record (not `badRecordSeen`). Each is logged when it starts, not per sync.
  ok() {
    const s = this.status
    s.lastSyncAt = Date.now()
    if (this.unreachable) {
      this.unreachable = false
      const b = this.live()
      if (b !== undefined) b._log('info', `[breakwater] store (${s.kind}) of '${this.name}' is reachable again; sharing state`)
    }
    s.healthy = !this.badRecordSeen
  }

  /** A valid record was read, or ours was saved: what the store holds is good again. */
  good() {
    if (!this.badRecordSeen) return
    this.badRecordSeen = false
    this.status.healthy = !this.unreachable
  }

  failed(e, what = 'sync') {
    if (e && e.code === 'BREAKWATER_STORE_CORRUPT') return this.badRecord(e.message, e.message)
    const s = this.status
    const raw = (e && e.message) || String(e)
    const msg = `${what}: ${raw}`
    s.lastError = msg
    s.healthy = false
    // One line when the store goes away, not one per sync while it stays away.
    if (!this.unreachable) {
      this.unreachable = true
      const b = this.live()
      if (b !== undefined) b._log('warn', `[breakwater] store (${s.kind}) of '${this.name}' failed (${msg}); running on local state`)
    }
  }

  /**
   * A record that is not a valid snapshot: ignored. It is logged once (per circuit and record,
   * not once per sync that reads it again) and shown in stats.store.lastError; the store stays
   * `healthy` (it answers), and the next good record applies as usual.
   */
  badRecord(key, why) {
    const msg = `load: ignored a record that is not a valid snapshot (${why})`
    this.status.lastError = msg
    this.status.healthy = false
    this.badRecordSeen = true
    if (this.bad.has(key)) return
    if (this.bad.size >= MAX_BAD_KEPT) this.bad.clear()
    this.bad.add(key)
    const b = this.live()
    if (b !== undefined) b._log('warn', `[breakwater] store (${this.status.kind}) of '${this.name}': ${msg}`)
  }

  // ---- decisions in ----------------------------------------------------------------------

  /**
   * Applies a record read from the store, if it is newer than what this process knows.
   * `current`: the record is what the store holds now (a load), not a pushed message that may
   * be late; one older than what we have seen then means the store lost its data, and its
   * versions start again from what it holds.
   */
  apply(rec, current = false, seqAtLoad = undefined) {
    if (rec === null || rec === undefined || this.closed) return
    const why = invalid(rec, this.name)
    if (why !== null) {
      let key
      try {
        key = JSON.stringify(rec).slice(0, 200)
      } catch {
        key = why
      }
      return this.badRecord(key, why)
    }
    this.good()
    if (rec.version !== undefined) {
      if (current && rec.version < this.version && this.saveLoop === null) this.version = rec.version - 1
      if (rec.version <= this.version) return
      // Our own decision goes first while its save is under way, or failed a moment ago (the
      // store just came back; the retry is due): its outcome (saved, or refused for a newer
      // decision) comes first, and this record is looked at again after it.
      const retrying = this.unsaved && performance.now() - this.unsavedAt < this.owner.backgroundMs * 2
      if (this.saveLoop !== null || retrying) {
        if (this.deferred === null || rec.version > this.deferred.version) this.deferred = rec
        if (this.saveLoop === null && performance.now() - this.savedTriedAt > 100) this.save()
        return
      }
      // Each thread has its own link (and version) on the one shared circuit. If the circuit
      // changed since this link last looked -- another thread applied a newer record or made a
      // decision -- this record may be older than that: it is not applied over it. A pull
      // started after the change (at once for a push) says what the store holds now; after
      // another thread's own decision, only once its save can have landed.
      const seq = this.circuitSeq()
      const fresh = performance.now() - this.elsewhereAt < this.owner.backgroundMs
      if (fresh || (current ? seqAtLoad !== undefined && seq !== seqAtLoad : seq !== this.seqSeen)) {
        if (!current) this.sync()
        return
      }
      this.version = rec.version
      if (rec.state === 'CLOSED') this.newGeneration(rec.version)
    } else {
      // A store without versions: newest stateChangedAt wins (the custom-store contract).
      const at = rec.stateChangedAt
      if (rec.state === 'CLOSED' && at > this.gen) this.gen = at
      if (at <= this.seen) return
      this.seen = at
      if (at <= this.ownAt) return // this process decided something newer itself
    }
    const b = this.live()
    if (b === undefined) return
    const mode = Atomics.load(b._C, b._ci)
    const local = b._modeState(mode)
    const forced = rec.forced === true
    let next = NaN
    if (rec.state === 'OPEN' && !forced) {
      // Another host's clock may be off by a day either way. Its open period (nextAttemptAt -
      // stateChangedAt, both from its one clock) is trusted up to ours; its moment is a hint:
      // at most that period from now, and at least that period minus the most time that can
      // have passed since it decided (it decided after our last load began). A record first
      // seen after a long gap (a thawed Lambda environment) gets only the upper bound.
      const now = Date.now()
      const period = Math.min(Math.max(rec.nextAttemptAt - rec.stateChangedAt, 0), this.maxOpenMs)
      const age = performance.now() - this.loadedAt
      next = Math.max(Math.min(rec.nextAttemptAt, now + period), now + period - age)
    }
    // Shared memory holds nextAttemptAt on the circuit clock; snapshots hold epoch ms.
    const sameOpen = local === 'OPEN' && (mode === S.M_FORCED_OPEN) === forced && (forced || Math.abs(b._CF[b._nextAt] + native.wallOffset() - next) < 1)
    if (rec.state === local && (local !== 'OPEN' || sameOpen)) return
    const before = b._seqNow()
    try {
      native.storeApply(this.cid, STATE_CODE[rec.state], forced, next)
    } catch {
      return // disposed meanwhile
    }
    b._sync(before)
    this.seqSeen = b._seqNow()
  }

  /**
   * Another thread of this process made a decision on the shared circuit; its link saves it.
   * Until that save can have landed, what this link reads from the store may predate it.
   */
  decidedElsewhere(breaker) {
    if (breaker._seqNow() !== this.seqSeen) this.elsewhereAt = performance.now()
  }

  /** The shared circuit's transition count (all threads), or -1 without a live instance. */
  circuitSeq() {
    const b = this.live()
    return b === undefined ? -1 : b._seqNow()
  }

  // ---- decisions out ---------------------------------------------------------------------

  /**
   * This process changed the circuit's state at `at` (epoch ms) for `reason`, through `breaker`:
   * publish it. A disabled (metrics-only) instance never changes the fleet's state by its outcomes.
   */
  ownTransition(at, to, reason, breaker) {
    const manual = MANUAL.has(reason)
    if (breaker !== undefined) this.seqSeen = breaker._seqNow()
    this.elsewhereAt = -Infinity // our decision is the newest here now (another instance of this thread may have marked it first)
    if (breaker !== undefined && breaker._enabled === false && !manual) return
    if (at > this.ownAt) this.ownAt = at
    // A probe's outcome, when the store granted the permit, is the fleet's one probe speaking:
    // it stands even if other hosts' HALF_OPEN saves moved the version on meanwhile.
    if (manual || (this.permitted && (reason === 'probeSucceeded' || reason === 'probeFailed'))) this.force = true
    this.save()
  }

  save() {
    this.dirty = true
    if (this.saveLoop === null) this.saveLoop = this.saveAll()
  }

  async saveAll() {
    await null // out of the caller's stack: it may be in the middle of delivering events
    let conflict = false
    let retries = 0
    while (this.dirty && !this.closed) {
      this.dirty = false
      const b = this.live()
      if (b === undefined) break
      const snap = b.toJSON()
      this.savedTriedAt = performance.now()
      const force = this.force
      this.force = false
      try {
        const r = await within(call(this.store, 'save', this.name, snap, { expectedVersion: this.version, force }), this.owner.backgroundMs, `store.save('${this.name}')`, true)
        this.unsaved = false
        this.ok()
        this.good()
        if (r !== null && typeof r === 'object' && Number.isSafeInteger(r.version)) {
          if (r.saved === true) {
            if (r.version > this.version) this.version = r.version
            if (snap.state === 'CLOSED') this.newGeneration(this.version)
          } else if (snap.state === 'OPEN' && retries++ < 3 && (await this.closedAt()) !== 0) {
            // A trip refused only because the fleet closed the circuit again meanwhile (a
            // newer CLOSED, which we had too): it is news to that decision, so it goes on top.
            this.dirty = true
          } else {
            conflict = true // another decision came first: the store's stands, we adopt it
          }
        } else if (snap.stateChangedAt > this.seen) {
          this.seen = snap.stateChangedAt
          if (snap.state === 'CLOSED' && snap.stateChangedAt > this.gen) this.gen = snap.stateChangedAt
        }
      } catch (e) {
        if (!this.unsaved) this.unsavedAt = performance.now()
        this.unsaved = true
        if (force) this.force = true
        this.failed(e, 'save')
      }
    }
    this.saveLoop = null
    const d = this.deferred
    this.deferred = null
    if (d !== null) this.apply(d)
    if (conflict) this.sync()
  }

  /** The version of the store's record if it is a CLOSED decision (now our base), else 0. */
  async closedAt() {
    try {
      const rec = await within(call(this.store, 'load', this.name), this.owner.backgroundMs, `store.load('${this.name}')`, true)
      if (rec === null || invalid(rec, this.name) !== null || rec.state !== 'CLOSED' || rec.version === undefined) return 0
      if (rec.version > this.version) this.version = rec.version
      this.newGeneration(rec.version)
      return rec.version
    } catch {
      return 0
    }
  }

  // ---- probes ----------------------------------------------------------------------------

  /** Resolves true if this process may run its probe (fleet permit, or no answer in time). */
  acquireProbe() {
    // `version`: the decision this process's HALF_OPEN follows from; a store refuses the permit
    // when it holds a newer OPEN one (the probe would be a call into a known outage).
    const asked = call(this.store, 'tryAcquireProbe', this.name, { ttlMs: this.probeTtlMs, max: this.o.halfOpenMaxRequests, version: this.version })
    return within(asked, this.owner.loadTimeoutMs, `store.tryAcquireProbe('${this.name}')`).then(
      (got) => {
        this.ok()
        if (got !== false) this.permitted = true
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
    this.permitted = false
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
      if (this.unsaved) this.save() // a decision the store has not got yet
      const t0 = performance.now()
      const seqAtLoad = this.circuitSeq()
      const work = [call(this.store, 'load', this.name)]
      if (this.merges) work.push(this.merge())
      // A store that never answers must not stop later syncs: each one has a deadline.
      const [snap] = await within(Promise.all(work), this.owner.backgroundMs, `sync of '${this.name}'`, true)
      this.ok()
      this.apply(snap, true, seqAtLoad)
      if (this.circuitSeq() === seqAtLoad) this.seqSeen = seqAtLoad
      this.loadedAt = t0
    } catch (e) {
      this.failed(e)
    } finally {
      this.busy = false
    }
  }

  /** Adds this process's counts to the fleet's window and trips on the fleet's rate. */
  async merge() {
    const b = this.live()
    // Our own decision is on its way: its version is the generation these counts belong to.
    if (b === undefined || this.saveLoop !== null) return
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
      // The fleet's buckets are shared between hosts, so they follow the wall clock (a host
      // whose clock is off counts in another bucket of the same window, at worst).
      epoch: Math.floor(Date.now() / this.bucketMs),
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

  /**
   * The fleet closed the circuit (decision `gen`): counts taken before belong to the old
   * generation and are dropped, so failures from before the recovery never count after it.
   */
  newGeneration(gen) {
    if (gen === this.gen) return
    this.gen = gen
    this.pending[0] = this.pending[1] = this.pending[2] = 0
    if (!this.merges) return
    try {
      native.takeCounts(this.cid)
    } catch {}
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
