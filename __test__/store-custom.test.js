'use strict'
// The custom store contract (load / save / tryAcquireProbe / releaseProbe), in one process:
// "another instance" is the test writing to the store.
const test = require('node:test')
const assert = require('node:assert/strict')
const { uniq, sleep, recordingLogger, runNode } = require('./helpers.js')
const { CircuitBreaker, CircuitBreakerOpenError } = require('..')

/** An in-memory store that records what the breaker asked of it. */
function memoryStore({ loadDelayMs = 0, permits = null, syncIntervalMs = 50, loadTimeoutMs = 200 } = {}) {
  const data = new Map()
  const calls = []
  return {
    data,
    calls,
    syncIntervalMs,
    loadTimeoutMs,
    permits, // null: always grant; a number: how many are left
    async load(name) {
      calls.push(['load', name])
      if (loadDelayMs) await sleep(loadDelayMs)
      const v = data.get(name)
      return v === undefined ? null : JSON.parse(v)
    },
    save(name, snap) {
      calls.push(['save', name, snap])
      const cur = data.get(name)
      if (cur === undefined || JSON.parse(cur).stateChangedAt < snap.stateChangedAt) data.set(name, JSON.stringify(snap))
    },
    tryAcquireProbe(name, opts) {
      calls.push(['tryAcquireProbe', name, opts])
      if (this.permits === null) return true
      if (this.permits <= 0) return false
      this.permits--
      return true
    },
    releaseProbe(name) {
      calls.push(['releaseProbe', name])
      if (this.permits !== null) this.permits++
    },
  }
}

const failing = () => Promise.reject(new Error('down'))
const openSnap = (name, at = Date.now()) => ({ name, state: 'OPEN', forced: false, nextAttemptAt: at + 60_000, stateChangedAt: at, savedAt: at })

test('the first execute waits for the initial load, and an OPEN snapshot rejects it without running the action', async () => {
  const store = memoryStore({ loadDelayMs: 60 })
  const name = uniq('custom-load')
  store.data.set(name, JSON.stringify(openSnap(name)))
  const b = new CircuitBreaker({ name, store, logger: null })
  let ran = false
  await assert.rejects(b.execute(async () => { ran = true }), (e) => e instanceof CircuitBreakerOpenError && e.circuit === name)
  assert.equal(ran, false)
  assert.equal(b.getStats().rejectionCount, 1)
  assert.equal(store.calls.filter((c) => c[0] === 'save').length, 0, "a decision read from the store is not written back")
  b.dispose()
})

test('a load slower than loadTimeoutMs does not hold calls longer; its late answer still applies', async () => {
  const store = memoryStore({ loadDelayMs: 300, loadTimeoutMs: 50, syncIntervalMs: 10_000 })
  const name = uniq('custom-slow-load')
  store.data.set(name, JSON.stringify(openSnap(name)))
  const log = recordingLogger()
  const b = new CircuitBreaker({ name, store, logger: log })
  const t0 = performance.now()
  assert.equal(await b.execute(async () => 'ran'), 'ran', 'the store could not answer in time: local state (CLOSED) decides')
  const waited = performance.now() - t0
  assert.ok(waited >= 40 && waited < 250, `waited ${waited.toFixed(0)} ms (loadTimeoutMs 50)`)
  assert.equal(b.getStats().store.healthy, false)
  assert.match(b.getStats().store.lastError, /longer than 50 ms/)
  await sleep(300)
  assert.equal(b.state, 'OPEN', 'the late snapshot was applied when it came')
  assert.equal(b.getStats().store.healthy, true)
  b.dispose()
})

test('own transitions are saved at once as toJSON() snapshots; the newest stateChangedAt wins', async () => {
  const store = memoryStore()
  const name = uniq('custom-save')
  const b = new CircuitBreaker({ name, store, minimumRequests: 2, logger: null })
  await b.execute(failing).catch(() => {})
  await b.execute(failing).catch(() => {})
  await sleep(0)
  await sleep(0)
  const saves = store.calls.filter((c) => c[0] === 'save')
  assert.equal(saves.length, 1)
  const snap = saves[0][2]
  assert.deepEqual(Object.keys(snap).sort(), ['forced', 'name', 'nextAttemptAt', 'savedAt', 'state', 'stateChangedAt'])
  assert.equal(snap.state, 'OPEN')
  assert.equal(snap.name, name)
  assert.deepEqual(snap, JSON.parse(JSON.stringify(snap)), 'JSON-serialisable')
  // Another instance closes the circuit later: this one follows.
  store.data.set(name, JSON.stringify({ ...snap, state: 'CLOSED', nextAttemptAt: null, stateChangedAt: snap.stateChangedAt + 10 }))
  await sleep(120)
  assert.equal(b.state, 'CLOSED')
  // A stale snapshot (older than this instance's own decision) is not applied.
  b.open(60_000)
  await sleep(10)
  const mine = JSON.parse(store.data.get(name))
  store.data.set(name, JSON.stringify({ ...mine, state: 'CLOSED', stateChangedAt: mine.stateChangedAt - 5 }))
  await sleep(120)
  assert.equal(b.state, 'OPEN')
  b.dispose()
})

test('HALF_OPEN: a probe waits for the fleet permit; refused, the call is rejected (not run); granted, it runs and the permit is given back', async () => {
  const store = memoryStore({ permits: 0 })
  const name = uniq('custom-probe')
  const b = new CircuitBreaker({ name, store, minimumRequests: 2, resetTimeout: 50, timeout: 2_000, halfOpenMaxRequests: 1, logger: null })
  await b.execute(failing).catch(() => {})
  await b.execute(failing).catch(() => {})
  await sleep(80)
  let ran = 0
  await assert.rejects(b.execute(async () => { ran++ }), CircuitBreakerOpenError)
  assert.equal(ran, 0, 'another instance holds the permit: this one does not probe')
  const ask = store.calls.find((c) => c[0] === 'tryAcquireProbe')
  assert.deepEqual(ask[2], { ttlMs: 2_000, max: 1, version: 0 }, 'version: the decision this HALF_OPEN follows (0: the store has no versions)')
  assert.equal(b.state, 'HALF_OPEN', 'the refused probe freed its local slot and decided nothing')
  const before = b.getStats().rejectionCount
  store.permits = 1
  assert.equal(await b.execute(async () => { ran++; return 'ok' }), 'ok')
  assert.equal(ran, 1)
  assert.equal(b.state, 'CLOSED')
  assert.equal(b.getStats().rejectionCount, before)
  await sleep(10)
  const order = store.calls.map((c) => c[0]).filter((c) => c !== 'load')
  assert.deepEqual(order.slice(-3), ['tryAcquireProbe', 'save', 'releaseProbe'], 'the CLOSED decision is saved before the permit is given back')
  assert.equal(store.permits, 1)
  b.dispose()
})

test('a store that cannot answer a permit in time: local rules decide (the probe runs)', async () => {
  const store = memoryStore({ loadTimeoutMs: 30 })
  store.tryAcquireProbe = () => new Promise(() => {}) // never answers
  const name = uniq('custom-probe-hang')
  const b = new CircuitBreaker({ name, store, minimumRequests: 2, resetTimeout: 30, logger: null })
  await b.execute(failing).catch(() => {})
  await b.execute(failing).catch(() => {})
  await sleep(50)
  assert.equal(await b.execute(async () => 'probe ran'), 'probe ran')
  assert.equal(b.state, 'CLOSED')
  assert.match(b.getStats().store.lastError, /tryAcquireProbe/)
  b.dispose()
})

test('a store whose every method throws never reaches a call; stats and one log line say so', async () => {
  const boom = () => { throw new Error('store exploded') }
  const store = { load: boom, save: boom, tryAcquireProbe: boom, releaseProbe: boom, syncIntervalMs: 20 }
  const log = recordingLogger()
  const name = uniq('custom-throws')
  const b = new CircuitBreaker({ name, store, minimumRequests: 2, resetTimeout: 20, logger: log })
  for (let i = 0; i < 20; i++) assert.equal(await b.execute(async () => i), i)
  await b.execute(failing).catch(() => {})
  await b.execute(failing).catch(() => {})
  await sleep(40)
  await b.execute(async () => 'x') // probe: permit errors → local rules
  await sleep(60)
  const st = b.getStats().store
  assert.equal(st.kind, 'custom')
  assert.equal(st.healthy, false)
  assert.match(st.lastError, /store exploded/)
  assert.equal(log.lines.filter((l) => /store \(custom\)/.test(l.msg)).length, 1, log.lines.map((l) => l.msg).join('\n'))
  b.dispose()
})

test('the hot path does not touch the store: 10,000 calls, a handful of store calls', async () => {
  const store = memoryStore({ syncIntervalMs: 1_000 })
  const name = uniq('custom-hot')
  const b = new CircuitBreaker({ name, store, logger: null })
  for (let i = 0; i < 10_000; i++) await b.execute(async () => i)
  assert.ok(store.calls.length <= 3, `store calls: ${store.calls.map((c) => c[0])}`)
  assert.equal(b.getStats().successCount, 10_000)
  b.dispose()
})

test('stats.store is null without a store', () => {
  const b = new CircuitBreaker({ name: uniq('custom-none'), logger: null })
  assert.equal(b.getStats().store, null)
  b.dispose()
})

test('a store whose kind, subscribe, loadSync or merge getter throws: a TypeError naming the property, and no circuit left registered', () => {
  const { getCircuitBreaker, getAllCircuitBreakerStats } = require('..')
  for (const prop of ['kind', 'subscribe', 'loadSync', 'merge']) {
    const name = uniq(`custom-getter-${prop}`)
    const store = memoryStore()
    Object.defineProperty(store, prop, { get() { throw new Error('getter says no') } })
    assert.throws(() => new CircuitBreaker({ name, store, logger: null }), (e) => {
      assert.ok(e instanceof TypeError, `${prop}: ${e}`)
      assert.match(e.message, new RegExp(`store\\.${prop}`))
      assert.match(e.message, /getter says no/)
      return true
    })
    assert.equal(getCircuitBreaker(name), undefined, `${prop}: not registered`)
    assert.ok(!(name in getAllCircuitBreakerStats()))
  }
})

test('instances of a circuit that come and go beside a long-lived one do not grow the store link', async () => {
  // Issue 12, item 6: every further instance added a WeakRef that was never removed.
  const script = `
    const { CircuitBreaker } = require(${JSON.stringify(require.resolve('..'))})
    const store = { load: () => null, save() {}, syncIntervalMs: 60000 }
    const keep = new CircuitBreaker({ name: 'churn', store, logger: null })
    ;(async () => {
      for (let i = 0; i < 20000; i++) {
        new CircuitBreaker({ name: 'churn', store, logger: null })
        if (i % 1000 === 999) { await new Promise((r) => setImmediate(r)); global.gc() }
      }
      // Finalizers run in tasks after a collection: give them a few turns.
      for (let i = 0; i < 5; i++) { global.gc(); await new Promise((r) => setTimeout(r, 20)) }
      console.log(JSON.stringify({ refs: keep._link.refs.size }))
    })()`
  const r = await runNode(['--expose-gc', '-e', script], { limitMs: 60_000 })
  assert.equal(r.code, 0, r.err)
  const { refs } = JSON.parse(r.out)
  assert.ok(refs < 100, `the link holds ${refs} references after 20,000 short-lived instances`)
})

test('a disabled (metrics-only) breaker never publishes a transition its calls caused; an operator\'s open() still goes out', async () => {
  const store = memoryStore()
  const name = uniq('custom-disabled')
  const b = new CircuitBreaker({ name, store, enabled: false, minimumRequests: 2, logger: null })
  for (let i = 0; i < 10; i++) await b.execute(failing).catch(() => {})
  await sleep(120) // a couple of syncs
  assert.deepEqual(store.calls.filter((c) => c[0] === 'save'), [], 'no outcome of a disabled breaker reaches the fleet')
  b.dispose()
  const other = memoryStore()
  const d = new CircuitBreaker({ name: uniq('custom-disabled-open'), store: other, enabled: false, logger: null })
  d.open()
  await sleep(20)
  const saves = other.calls.filter((c) => c[0] === 'save')
  assert.equal(saves.length, 1)
  assert.equal(saves[0][2].forced, true)
  d.dispose()
})
