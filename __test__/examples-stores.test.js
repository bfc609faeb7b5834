'use strict'
// The example store in examples/stores/ against a real server: PostgreSQL (a throwaway
// server from helpers/postgres.js). (DynamoDB is built in now: store-dynamodb.test.js.) Each store gets the same
// conformance checks (the CircuitStore contract), then one end-to-end run with breakwater
// itself: two child processes (two "instances" of a fleet) share one circuit through it.

const test = require('node:test')
const assert = require('node:assert/strict')
const { requirePostgres, startPostgres } = require('./helpers/postgres')
const { startInstance } = require('./helpers/fleet')
const { uniq, sleep } = require('./helpers')

function shuffled(xs) {
  const a = xs.slice()
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[a[i], a[j]] = [a[j], a[i]]
  }
  return a
}

function snapshot(name, stateChangedAt, extra = {}) {
  return { name, state: 'OPEN', forced: false, nextAttemptAt: stateChangedAt + 60_000, stateChangedAt, savedAt: stateChangedAt + 1, ...extra }
}

/**
 * The CircuitStore contract, as subtests of `t`. `open()` returns a new store instance (its
 * own client/pool: a separate "process"); `closeAll()` releases them.
 */
async function conformance(t, { open, closeAll }) {
  t.afterEach(closeAll)

  await t.test('load of an unknown circuit is null', async () => {
    assert.equal(await open().load(uniq('none')), null)
  })

  await t.test('save/load round trip, unknown extra fields included', async () => {
    const name = uniq('rt')
    const snap = snapshot(name, Date.now(), { fleet: { region: 'eu-west-1', tags: ['a', 1, null, true] }, note: 'é ✓' })
    const a = open()
    await a.save(name, snap)
    assert.deepEqual(await a.load(name), snap)
    assert.deepEqual(await open().load(name), snap, 'another instance sees it')
    const closed = { name, state: 'CLOSED', forced: false, nextAttemptAt: null, stateChangedAt: snap.stateChangedAt + 5, savedAt: snap.savedAt + 5 }
    await a.save(name, closed)
    assert.deepEqual(await open().load(name), closed)
  })

  await t.test('an older (or equally old) save does not overwrite a newer one', async () => {
    const name = uniq('older')
    const s = open()
    const newer = snapshot(name, 2_000_000, { which: 'newer' })
    await s.save(name, newer)
    await s.save(name, { ...snapshot(name, 1_000_000), state: 'CLOSED', which: 'older' })
    assert.deepEqual(await s.load(name), newer)
    await open().save(name, { ...snapshot(name, 2_000_000), state: 'HALF_OPEN', which: 'same time' })
    assert.deepEqual(await s.load(name), newer)
    const newest = { ...snapshot(name, 2_000_001), state: 'CLOSED', which: 'newest' }
    await open().save(name, newest)
    assert.deepEqual(await s.load(name), newest)
  })

  await t.test('20 concurrent saves from 20 instances in shuffled order: the newest is stored', async () => {
    for (let round = 0; round < 3; round++) {
      const name = uniq('conc')
      const base = Date.now()
      const times = shuffled(Array.from({ length: 20 }, (_, i) => base + i * 7))
      const stores = times.map(() => open())
      await Promise.all(times.map((ts, i) => stores[i].save(name, snapshot(name, ts, { writer: i }))))
      const stored = await open().load(name)
      assert.equal(stored.stateChangedAt, base + 19 * 7, `round ${round}`)
      assert.equal(stored.writer, times.indexOf(base + 19 * 7))
      await closeAll()
    }
  })

  async function race(name, n, opts) {
    const stores = Array.from({ length: n }, () => open())
    const got = await Promise.all(stores.map((s) => s.tryAcquireProbe(name, opts)))
    return { stores, got, winners: got.filter(Boolean).length }
  }

  await t.test('tryAcquireProbe, max 1, 10 instances at once: exactly one gets it', async () => {
    for (let round = 0; round < 3; round++) {
      const { winners } = await race(uniq('p1'), 10, { ttlMs: 30_000, max: 1 })
      assert.equal(winners, 1, `round ${round}`)
    }
  })

  await t.test('tryAcquireProbe, max 2, 10 instances at once: exactly two get one', async () => {
    for (let round = 0; round < 3; round++) {
      const name = uniq('p2')
      const { winners } = await race(name, 10, { ttlMs: 30_000, max: 2 })
      assert.equal(winners, 2, `round ${round}`)
      assert.equal(await open().tryAcquireProbe(name, { ttlMs: 30_000, max: 2 }), false, 'a latecomer gets none')
    }
  })

  await t.test('releaseProbe frees the permit for another; releasing one not held is a no-op', async () => {
    const name = uniq('rel')
    const opts = { ttlMs: 30_000, max: 1 }
    const [a, b, c, d] = [open(), open(), open(), open()]
    assert.equal(await a.tryAcquireProbe(name, opts), true)
    assert.equal(await b.tryAcquireProbe(name, opts), false)
    await c.releaseProbe(name) // c holds nothing: must not free a's permit
    assert.equal(await d.tryAcquireProbe(name, opts), false)
    await a.releaseProbe(name)
    assert.equal(await b.tryAcquireProbe(name, opts), true)
    assert.equal(await d.tryAcquireProbe(name, opts), false)
    await a.releaseProbe(name) // already released: no-op, b keeps its permit
    assert.equal(await c.tryAcquireProbe(name, opts), false)
    await b.releaseProbe(name)
    assert.equal(await c.tryAcquireProbe(name, opts), true)
  })

  await t.test('a permit expires by itself after ttlMs (a crashed holder does not block the fleet)', async () => {
    const name = uniq('ttl')
    const [a, b, c] = [open(), open(), open()]
    assert.equal(await a.tryAcquireProbe(name, { ttlMs: 300, max: 1 }), true)
    assert.equal(await b.tryAcquireProbe(name, { ttlMs: 30_000, max: 1 }), false)
    await sleep(450)
    assert.equal(await b.tryAcquireProbe(name, { ttlMs: 30_000, max: 1 }), true, 'taken over after expiry')
    await a.releaseProbe(name) // a's permit expired and is b's now: a must not release it
    assert.equal(await c.tryAcquireProbe(name, { ttlMs: 30_000, max: 1 }), false)
  })
}

/** Runs the fixture with `cfg`; returns its JSON line. */
/**
 * Two processes, one circuit: A trips it, B (created afterwards) starts OPEN from the store.
 * `options` configure the example store in each child (__test__/fixtures/store-node.js);
 * `store` is an instance in this process, to look at what A saved.
 */
async function endToEnd(kind, options, store) {
  const name = uniq('e2e')
  const cfg = { store: { kind, options }, breaker: { name, failureThreshold: 0.5, minimumRequests: 2, resetTimeout: 60_000, timeout: 0 } }
  const a = await startInstance(cfg)
  let stored = null
  try {
    await a.run({ outcome: 'fail' })
    await a.run({ outcome: 'fail' })
    assert.equal((await a.state()).state, 'OPEN', 'instance A opened its circuit')
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(50)) {
      stored = await store.load(name)
      if (stored && stored.state === 'OPEN') break
    }
  } finally {
    await a.stop()
  }
  assert.equal(stored && stored.state, 'OPEN', `breakwater saved the OPEN state to the store: ${JSON.stringify(stored)}`)
  const b = await startInstance(cfg)
  try {
    const r = await b.run()
    assert.equal(r.ran, false, "instance B's action must not run: the circuit is OPEN fleet-wide")
    assert.equal(r.error, 'CircuitBreakerOpenError')
    assert.equal((await b.state()).state, 'OPEN')
  } finally {
    await b.stop()
  }
}

test('PostgreSQL store (examples/stores/postgres-store.js) on a local postgres', async (t) => {
  if (!requirePostgres(t)) return
  const { Pool } = require('pg')
  const { postgresStore, ensureSchema } = require('../examples/stores/postgres-store.js')
  const server = await startPostgres()
  const table = 'breakwater_circuits'
  // pg emits 'error' on a pool whose idle connection the server closed (its shutdown at the
  // end): a pool without a listener would turn that into an uncaught exception.
  const quiet = (pool) => pool.on('error', () => {})
  const admin = quiet(new Pool({ connectionString: server.connectionString, max: 2 }))
  // One hook, in order: the pools end before the server stops (else their idle
  // connections are terminated under them and the pool emits 'error').
  t.after(async () => {
    await admin.end()
    await server.stop()
  })
  await ensureSchema(admin, { table })
  await ensureSchema(admin, { table }) // idempotent

  let pools = []
  await conformance(t, {
    open() {
      const pool = quiet(new Pool({ connectionString: server.connectionString, max: 2 }))
      pools.push(pool)
      return postgresStore({ pool, table })
    },
    async closeAll() {
      const ending = pools
      pools = []
      await Promise.all(ending.map((p) => p.end()))
    },
  })

  await t.test('end to end: an OPEN decision in one process reaches a breaker in another', async () => {
    await endToEnd('postgres', { connectionString: server.connectionString, table }, postgresStore({ pool: admin, table }))
  })
})
