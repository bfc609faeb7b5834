'use strict'
// redisStore({ url }): one circuit for a whole fleet (Lambda environments, servers).
//
// Why JavaScript and not the `redis` crate on tokio: see the README ("Shared state"); in short,
// the store is off the hot path (one pipelined round trip per circuit per syncIntervalMs),
// custom stores are JavaScript anyway, and a Rust client would put a tokio runtime and its
// threads into every user's binary, Redis or not. resp.js is a small RESP2 client with
// pipelining, reconnect with backoff, and fail-fast while the server is down.
//
// Keys (the `{name}` hash tag keeps a circuit's keys in one Redis Cluster slot, so its Lua
// scripts stay legal there), under `prefix` (default `breakwater:`):
//   <prefix>{<name>}:state              hash: json, state, nextAttemptAt, stateChangedAt, forced
//                                        (PEXPIRE stateTtlMs, renewed by every save)
//   <prefix>{<name>}:probe:<i>          the i-th half-open probe permit: SET NX PX ttl
//   <prefix>{<name>}:w:<gen>:<epoch>    the fleet's counts of one time bucket: hash c, f, s
//                                        (HINCRBY; PEXPIRE one window + one bucket)
//   channel <prefix>transitions         every saved snapshot, as JSON (pub/sub push)

const crypto = require('node:crypto')
const { RedisClient, parseRedisUrl } = require('./resp.js')
const { num, show, storeTimings } = require('../options.js')

// Saves `snapshot` unless the stored one is at least as new; publishes what it saved.
const SAVE = `
local cur = tonumber(redis.call('HGET', KEYS[1], 'stateChangedAt') or '-1')
if cur >= tonumber(ARGV[4]) then return 0 end
redis.call('HSET', KEYS[1], 'json', ARGV[1], 'state', ARGV[2], 'nextAttemptAt', ARGV[3], 'stateChangedAt', ARGV[4], 'forced', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PUBLISH', ARGV[7], ARGV[1])
return 1
`

// A probe permit: none while the fleet's state is OPEN and not yet due; else the first free
// of the permit keys (KEYS[2..]), taken with SET NX PX. Returns its index or -1.
const ACQUIRE = `
local st = redis.call('HMGET', KEYS[1], 'state', 'nextAttemptAt', 'forced')
if st[1] == 'OPEN' then
  if st[3] == '1' then return -1 end
  local at = tonumber(st[2])
  if at and at > tonumber(ARGV[3]) then return -1 end
end
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], ARGV[1], 'NX', 'PX', ARGV[2]) then return i - 2 end
end
return -1
`

// Gives a permit back only if this instance still holds it (it may have expired and moved on).
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

// Adds this instance's counts to the current bucket (the last key) and sums the window.
const MERGE = `
local cur = KEYS[#KEYS]
if tonumber(ARGV[1]) > 0 then
  redis.call('HINCRBY', cur, 'c', ARGV[1])
  if tonumber(ARGV[2]) > 0 then redis.call('HINCRBY', cur, 'f', ARGV[2]) end
  if tonumber(ARGV[3]) > 0 then redis.call('HINCRBY', cur, 's', ARGV[3]) end
  redis.call('PEXPIRE', cur, ARGV[4])
end
local c, f, s = 0, 0, 0
for i = 1, #KEYS do
  local v = redis.call('HMGET', KEYS[i], 'c', 'f', 's')
  c = c + (tonumber(v[1]) or 0)
  f = f + (tonumber(v[2]) or 0)
  s = s + (tonumber(v[3]) or 0)
end
return {c, f, s}
`

/**
 * @param {{ url: string, prefix?: string, syncIntervalMs?: number, loadTimeoutMs?: number,
 *   stateTtlMs?: number, connectTimeoutMs?: number, commandTimeoutMs?: number }} opts
 */
function redisStore(opts) {
  if (opts === null || typeof opts !== 'object') throw new TypeError(`breakwater: redisStore(options) needs { url }, got ${show(opts)}`)
  const {
    url,
    prefix = 'breakwater:',
    stateTtlMs = 7 * 24 * 3600 * 1000,
    connectTimeoutMs = 1_000,
    commandTimeoutMs = 1_000,
  } = opts
  try {
    parseRedisUrl(url)
  } catch (e) {
    throw new TypeError(`breakwater: redisStore option ${e.message.replace(/^breakwater: /, '')}`)
  }
  if (typeof prefix !== 'string') throw new TypeError(`breakwater: redisStore option prefix must be a string, got ${show(prefix)}`)
  const { syncIntervalMs, loadTimeoutMs } = storeTimings(opts)
  num('store.stateTtlMs', stateTtlMs, { min: 1000, max: 2 ** 46, int: true, unit: ' (ms)' })
  num('store.connectTimeoutMs', connectTimeoutMs, { min: 1, int: true, unit: ' (ms)' })
  num('store.commandTimeoutMs', commandTimeoutMs, { min: 1, int: true, unit: ' (ms)' })

  const client = new RedisClient({ url, connectTimeoutMs, commandTimeoutMs })
  const save = client.script(SAVE)
  const acquire = client.script(ACQUIRE)
  const release = client.script(RELEASE)
  const merge = client.script(MERGE)
  const channel = `${prefix}transitions`
  const token = `${process.pid}-${crypto.randomBytes(8).toString('hex')}`
  const key = (name) => `${prefix}{${name}}`
  const held = new Map() // name → permit keys this instance holds
  const listeners = new Map() // name → Set<(snapshot) => void>
  let unsubscribe = null

  function onMessage(message) {
    let snap
    try {
      snap = JSON.parse(message)
    } catch {
      return // not ours
    }
    const set = snap && typeof snap.name === 'string' ? listeners.get(snap.name) : undefined
    if (set !== undefined) for (const f of set) f(snap)
  }

  return {
    kind: 'redis',
    syncIntervalMs,
    loadTimeoutMs,
    /** The client, for health checks and for closing it (store.close()). */
    client,

    async load(name) {
      const json = await client.command(['HGET', `${key(name)}:state`, 'json'])
      if (json === null) return null
      try {
        return JSON.parse(json)
      } catch {
        throw Object.assign(new Error(`${key(name)}:state holds no JSON snapshot`), { code: 'BREAKWATER_STORE_CORRUPT' })
      }
    },

    async save(name, snap) {
      const json = JSON.stringify(snap)
      const r = await save.run([`${key(name)}:state`], [
        json, snap.state, snap.nextAttemptAt == null ? '' : String(snap.nextAttemptAt), String(snap.stateChangedAt),
        snap.forced ? '1' : '0', String(stateTtlMs), channel,
      ])
      return r === 1
    },

    async tryAcquireProbe(name, { ttlMs, max }) {
      const k = key(name)
      const keys = [`${k}:state`]
      for (let i = 0; i < max; i++) keys.push(`${k}:probe:${i}`)
      const i = await acquire.run(keys, [token, String(Math.max(1, Math.ceil(ttlMs))), String(Date.now())])
      if (i < 0) return false
      let mine = held.get(name)
      if (mine === undefined) held.set(name, (mine = []))
      mine.push(`${k}:probe:${i}`)
      return true
    },

    async releaseProbe(name) {
      const mine = held.get(name)
      if (mine === undefined || mine.length === 0) return
      const k = mine.shift()
      if (mine.length === 0) held.delete(name)
      await release.run([k], [token])
    },

    /** Adds counts to the fleet's current bucket; resolves with the fleet's window. */
    async merge(name, { generation, bucketMs, buckets, epoch, calls, failures, slowCalls }) {
      const k = key(name)
      const keys = []
      for (let e = epoch - buckets + 1; e <= epoch; e++) keys.push(`${k}:w:${generation}:${e}`)
      const [c, f, s] = await merge.run(keys, [String(calls), String(failures), String(slowCalls), String(Math.ceil(bucketMs * (buckets + 1)))])
      return { calls: c, failures: f, slowCalls: s }
    },

    /** Pushes every snapshot another instance saves for `name` to `listener`. */
    subscribe(name, listener) {
      let set = listeners.get(name)
      if (set === undefined) listeners.set(name, (set = new Set()))
      set.add(listener)
      if (unsubscribe === null) unsubscribe = client.subscribe(channel, onMessage)
      return () => {
        set.delete(listener)
        if (set.size === 0) listeners.delete(name)
        if (listeners.size === 0 && unsubscribe !== null) {
          unsubscribe()
          unsubscribe = null
        }
      }
    },

    /** Closes the connections (a process exits without it: they are unref'd). */
    close() {
      client.close()
    },
  }
}

module.exports = { redisStore }
