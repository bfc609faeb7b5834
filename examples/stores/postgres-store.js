'use strict'
// A breakwater store on PostgreSQL (node-postgres, `pg`). An example to copy, not part of
// the package: `new CircuitBreaker({ name: 'stripe', store: postgresStore({ pool }) })`.
//
// Two tables (ensureSchema() creates them):
//   <table>         (name PK, state_changed_at, snapshot jsonb, updated_at)
//   <table>_probes  (name, slot) PK, holder, expires_at: one row per fleet-wide probe permit
//
// Every write is a single conditional statement, safe with many processes at once:
// - save() is an upsert whose DO UPDATE only applies when the new stateChangedAt is newer.
//   PostgreSQL locks the conflicting row and re-checks the WHERE on its latest version, so
//   concurrent saves in any order leave the newest one stored.
// - a probe permit is one of `max` (name, slot) rows, taken with an upsert that only
//   overwrites an expired row. Expiry uses the database clock (now()), so the clocks of
//   the clients do not matter.

const { randomUUID } = require('node:crypto')

/** "schema.table" or "table" → a safely quoted identifier; the name of its probes table. */
function identifiers(table) {
  if (typeof table !== 'string' || !/^([A-Za-z_][A-Za-z0-9_$]*\.)?[A-Za-z_][A-Za-z0-9_$]*$/.test(table)) {
    throw new TypeError(`postgresStore: table must be a plain identifier or schema.identifier, got ${JSON.stringify(table)}`)
  }
  const parts = table.split('.')
  const quote = (p) => `"${p}"`
  const last = parts.pop()
  const prefix = parts.map((p) => quote(p) + '.').join('')
  return { circuits: prefix + quote(last), probes: prefix + quote(`${last}_probes`) }
}

/** The ordering key of a snapshot: stateChangedAt, or 0 when it has none (never overwrites). */
function orderOf(snapshot) {
  const t = snapshot && snapshot.stateChangedAt
  return typeof t === 'number' && Number.isFinite(t) ? t : 0
}

/**
 * Creates the two tables if they do not exist.
 * @param {import('pg').Pool} pool
 * @param {{ table?: string }} [options]
 */
async function ensureSchema(pool, { table = 'breakwater_circuits' } = {}) {
  const t = identifiers(table)
  await pool.query(`CREATE TABLE IF NOT EXISTS ${t.circuits} (
    name text PRIMARY KEY,
    state_changed_at double precision NOT NULL,
    snapshot jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
  )`)
  await pool.query(`CREATE TABLE IF NOT EXISTS ${t.probes} (
    name text NOT NULL,
    slot integer NOT NULL,
    holder text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (name, slot)
  )`)
}

/**
 * @param {{ pool: import('pg').Pool, table?: string, loadTimeoutMs?: number, syncIntervalMs?: number }} options
 */
function postgresStore({ pool, table = 'breakwater_circuits', loadTimeoutMs, syncIntervalMs } = {}) {
  if (!pool || typeof pool.query !== 'function') throw new TypeError('postgresStore: pool must be a pg Pool (or Client)')
  const t = identifiers(table)

  const instance = randomUUID() // this store instance, as a permit holder
  let seq = 0
  const held = new Map() // circuit name -> [{ slot, holder }], oldest first

  const SAVE = `INSERT INTO ${t.circuits} AS c (name, state_changed_at, snapshot)
    VALUES ($1, $2, $3::jsonb)
    ON CONFLICT (name) DO UPDATE
      SET state_changed_at = excluded.state_changed_at, snapshot = excluded.snapshot, updated_at = now()
      WHERE excluded.state_changed_at > c.state_changed_at`
  const LOAD = `SELECT snapshot FROM ${t.circuits} WHERE name = $1`
  const ACQUIRE = `INSERT INTO ${t.probes} AS p (name, slot, holder, expires_at)
    VALUES ($1, $2, $3, now() + make_interval(secs => $4::double precision / 1000))
    ON CONFLICT (name, slot) DO UPDATE
      SET holder = excluded.holder, expires_at = excluded.expires_at
      WHERE p.expires_at < now()
    RETURNING slot`
  const RELEASE = `DELETE FROM ${t.probes} WHERE name = $1 AND slot = $2 AND holder = $3`

  const store = {
    async load(name) {
      const { rows } = await pool.query(LOAD, [name])
      return rows.length ? rows[0].snapshot : null // pg parses jsonb
    },

    async save(name, snapshot) {
      // An older (or equally old) snapshot updates no row: ignored, not an error.
      await pool.query(SAVE, [name, orderOf(snapshot), JSON.stringify(snapshot)])
    },

    async tryAcquireProbe(name, { ttlMs, max }) {
      for (let slot = 0; slot < max; slot++) {
        const holder = `${instance}:${++seq}`
        const { rowCount } = await pool.query(ACQUIRE, [name, slot, holder, ttlMs])
        if (rowCount === 0) continue // held by someone and not expired: try the next slot
        // An expired permit of ours may have been in this slot: it is superseded.
        const mine = (held.get(name) || []).filter((p) => p.slot !== slot)
        mine.push({ slot, holder })
        held.set(name, mine)
        return true
      }
      return false
    },

    async releaseProbe(name) {
      const mine = held.get(name)
      if (!mine || mine.length === 0) return // holds none: no-op
      const { slot, holder } = mine.shift()
      if (mine.length === 0) held.delete(name)
      // Only if it is still ours: after expiry someone else may hold this slot.
      await pool.query(RELEASE, [name, slot, holder])
    },
  }
  if (loadTimeoutMs !== undefined) store.loadTimeoutMs = loadTimeoutMs
  if (syncIntervalMs !== undefined) store.syncIntervalMs = syncIntervalMs
  return store
}

module.exports = { postgresStore, ensureSchema }
