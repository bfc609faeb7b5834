'use strict'
// redisStore({ url }) or redisStore({ client }): one circuit for a whole fleet (Lambda
// environments, servers).
//
// With `url`, breakwater's own small RESP client (resp.js) connects: no dependency, nothing to
// load at cold start but node:net. With `client`, the user's own connected ioredis, iovalkey or
// node-redis client (standalone or Cluster) carries everything, so TLS, ACL users, Sentinel,
// Cluster and IAM auth are configured once, in the client they already trust (clients.js).
// Everything is a Lua script, so both forms run the same code on the server.
//
// Keys, under `prefix` (default `breakwater:`); `{...}` is a hash tag, so a circuit's keys share
// one Redis Cluster slot and its scripts stay legal there:
//   <prefix>{<name>}:state        hash: json, version, state, forced (PEXPIRE stateTtlMs)
//   <prefix>{<name>}:probe:<i>    the i-th half-open probe permit: SET NX PX ttl
//   <prefix>{<name>}:w:<gen>      the fleet's counts of generation <gen>: fields c<epoch>,
//                                  f<epoch>, s<epoch> per time bucket (PEXPIRE one window)
//   channel <prefix>db<db>:transitions   every saved decision, pushed (pub/sub)
// Pub/sub ignores the database number, so the channel carries it: stores on two databases
// (staging on /1, production on /0) never hear each other.
//
// Order: every saved decision gets the next `version`, assigned by the SAVE script (see
// link.js). The fleet's bucket epochs come from the server's TIME, not from hosts' clocks.

const crypto = require('node:crypto')
const { num, show, storeTimings } = require('../options.js')
const { Held } = require('./held.js')

/** Bytes of one pushed message at most: a snapshot is ~200 bytes. Larger ones are not ours. */
const MAX_MESSAGE = 16 * 1024

// The stored record of a circuit: its snapshot JSON and version.
const LOAD = `return redis.call('HMGET', KEYS[1], 'json', 'version')`

// Saves a decision unless the store holds a newer one than it was based on (ARGV[2]); an
// operator's (ARGV[3] = '1') always. A store behind the saver lost its data (a restart
// without persistence): the saver's known version carries the order on.
// Returns {1, version} or {0, current version}.
const SAVE = `
local cur = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
local expected = tonumber(ARGV[2])
if ARGV[3] ~= '1' and cur > expected then return {0, cur} end
local v = math.max(cur, expected) + 1
redis.call('HSET', KEYS[1], 'json', ARGV[1], 'version', v, 'state', ARGV[4], 'forced', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PUBLISH', ARGV[7], ARGV[8] .. '\\n' .. v .. '\\n' .. ARGV[1])
return {1, v}
`

// A probe permit: none while the fleet holds a forced OPEN, or an OPEN decision newer than the
// one the asker's HALF_OPEN follows from (ARGV[3]); else the first free permit key (KEYS[2..]),
// taken with SET NX PX. Returns its index or -1. No clock is compared.
const ACQUIRE = `
local st = redis.call('HMGET', KEYS[1], 'state', 'version', 'forced')
if st[1] == 'OPEN' then
  if st[3] == '1' then return -1 end
  if tonumber(st[2] or '0') > tonumber(ARGV[3]) then return -1 end
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

// Adds this instance's counts to the current bucket of the generation's hash and sums the
// window. The bucket comes from the server's clock: hosts' clocks may disagree by a day.
const MERGE = `
local t = redis.call('TIME')
local bms = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local e = math.floor((tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)) / bms)
local k = KEYS[1]
if tonumber(ARGV[1]) > 0 then
  redis.call('HINCRBY', k, 'c' .. e, ARGV[1])
  if tonumber(ARGV[2]) > 0 then redis.call('HINCRBY', k, 'f' .. e, ARGV[2]) end
  if tonumber(ARGV[3]) > 0 then redis.call('HINCRBY', k, 's' .. e, ARGV[3]) end
  redis.call('PEXPIRE', k, bms * (n + 1))
  if redis.call('HLEN', k) > 3 * (n + 2) then
    for _, f in ipairs(redis.call('HKEYS', k)) do
      if tonumber(string.sub(f, 2)) <= e - n then redis.call('HDEL', k, f) end
    end
  end
end
local c, f, s = 0, 0, 0
for i = e - n + 1, e do
  local v = redis.call('HMGET', k, 'c' .. i, 'f' .. i, 's' .. i)
  c = c + (tonumber(v[1]) or 0)
  f = f + (tonumber(v[2]) or 0)
  s = s + (tonumber(v[3]) or 0)
end
return {c, f, s}
`

const sha1 = (s) => crypto.createHash('sha1').update(s).digest('hex')
const script = (lua) => ({ lua, sha: sha1(lua) })
const SCRIPTS = { LOAD: script(LOAD), SAVE: script(SAVE), ACQUIRE: script(ACQUIRE), RELEASE: script(RELEASE), MERGE: script(MERGE) }

const corrupt = (why) => Object.assign(new Error(why), { code: 'BREAKWATER_STORE_CORRUPT' })
const int = (v) => (typeof v === 'number' ? v : Number(v))

/**
 * @param {{ url?: string, client?: object, prefix?: string, syncIntervalMs?: number,
 *   loadTimeoutMs?: number, stateTtlMs?: number, connectTimeoutMs?: number,
 *   commandTimeoutMs?: number }} opts
 */
function redisStore(opts) {
  if (opts === null || typeof opts !== 'object') throw new TypeError(`breakwater: redisStore(options) needs { url } or { client }, got ${show(opts)}`)
  const {
    url,
    client: userClient,
    prefix = 'breakwater:',
    stateTtlMs = 7 * 24 * 3600 * 1000,
    connectTimeoutMs = 1_000,
    commandTimeoutMs = 1_000,
  } = opts
  if ((url === undefined) === (userClient === undefined)) throw new TypeError('breakwater: redisStore needs exactly one of url (a redis:// URL) and client (your connected ioredis, iovalkey or node-redis client)')
  if (typeof prefix !== 'string') throw new TypeError(`breakwater: redisStore option prefix must be a string, got ${show(prefix)}`)
  if (prefix.length > 200) throw new RangeError(`breakwater: redisStore option prefix must be at most 200 characters, got ${prefix.length}`)
  const { syncIntervalMs, loadTimeoutMs } = storeTimings(opts)
  num('store.stateTtlMs', stateTtlMs, { min: 1000, max: 2 ** 46, int: true, unit: ' (ms)' })
  num('store.connectTimeoutMs', connectTimeoutMs, { min: 1, int: true, unit: ' (ms)' })
  num('store.commandTimeoutMs', commandTimeoutMs, { min: 1, int: true, unit: ' (ms)' })

  const conn = url !== undefined
    ? require('./clients.js').respConnection({ url, connectTimeoutMs, commandTimeoutMs, maxMessage: MAX_MESSAGE })
    : require('./clients.js').userConnection(userClient, { commandTimeoutMs })
  const channel = `${prefix}db${conn.db}:transitions`
  const token = `${process.pid}-${crypto.randomBytes(8).toString('hex')}`
  // A name with a brace would end or empty the hash tag: its tag is then a digest of the name.
  const key = (name) => `${prefix}{${/[{}]/.test(name) ? `#${sha1(name)}` : name}}`
  const held = new Held() // the key of each permit this instance holds
  const listeners = new Map() // JSON of a name -> Set<(record) => void>
  let unsubscribe = null

  // A message is `<JSON name>\n<version>\n<snapshot JSON>`: the name is matched as a string
  // before anything is parsed, and a message too large to be a snapshot is never parsed.
  function onMessage(message) {
    if (typeof message !== 'string') message = String(message)
    const nl = message.indexOf('\n')
    if (nl < 0 || nl > 2048) return
    const set = listeners.get(message.slice(0, nl))
    if (set === undefined) return
    let rec
    if (message.length > MAX_MESSAGE) {
      rec = corrupt(`a pushed message of ${message.length} characters (at most ${MAX_MESSAGE})`)
    } else {
      const nl2 = message.indexOf('\n', nl + 1)
      rec = parse(message.slice(nl2 + 1), message.slice(nl + 1, nl2))
    }
    for (const f of set) f(rec)
  }

  /** The record of `json` at `version`, or a BREAKWATER_STORE_CORRUPT error to report. */
  function parse(json, version) {
    if (json.length > MAX_MESSAGE) return corrupt(`a stored snapshot of ${json.length} characters (at most ${MAX_MESSAGE})`)
    let rec
    try {
      rec = JSON.parse(json)
    } catch {
      return corrupt('the stored snapshot is not JSON')
    }
    if (rec === null || typeof rec !== 'object') return corrupt('the stored snapshot is not an object')
    if (version !== null && version !== undefined && version !== '') rec.version = int(version)
    return rec
  }

  return {
    kind: 'redis',
    syncIntervalMs,
    loadTimeoutMs,
    /** The RESP client of the url form (for health checks), or the client you passed. */
    client: conn.client,

    async load(name) {
      const r = await conn.eval(SCRIPTS.LOAD, [`${key(name)}:state`], [])
      if (!Array.isArray(r) || r[0] === null || r[0] === undefined) return null
      const rec = parse(String(r[0]), r[1])
      if (rec instanceof Error) throw rec
      return rec
    },

    async save(name, snap, { expectedVersion = 0, force = false } = {}) {
      const json = JSON.stringify(snap)
      const r = await conn.eval(SCRIPTS.SAVE, [`${key(name)}:state`], [
        json, String(expectedVersion), force ? '1' : '0', String(snap.state), snap.forced ? '1' : '0',
        String(stateTtlMs), channel, JSON.stringify(name),
      ])
      return { saved: int(r[0]) === 1, version: int(r[1]) }
    },

    async tryAcquireProbe(name, { ttlMs, max, version = 0 }) {
      const k = key(name)
      const keys = [`${k}:state`]
      for (let i = 0; i < max; i++) keys.push(`${k}:probe:${i}`)
      const i = int(await conn.eval(SCRIPTS.ACQUIRE, keys, [token, String(Math.max(1, Math.ceil(ttlMs))), String(version)]))
      if (i < 0) return false
      held.add(name, `${k}:probe:${i}`)
      return true
    },

    async releaseProbe(name) {
      const k = held.take(name)
      if (k === undefined) return
      await conn.eval(SCRIPTS.RELEASE, [k], [token])
    },

    /** Adds counts to the fleet's current bucket; resolves with the fleet's window. */
    async merge(name, { generation, bucketMs, buckets, calls, failures, slowCalls }) {
      const r = await conn.eval(SCRIPTS.MERGE, [`${key(name)}:w:${generation}`], [
        String(calls), String(failures), String(slowCalls), String(bucketMs), String(buckets),
      ])
      return { calls: int(r[0]), failures: int(r[1]), slowCalls: int(r[2]) }
    },

    /** Pushes every decision another instance saves for `name` to `listener`. */
    subscribe(name, listener) {
      const id = JSON.stringify(name)
      let set = listeners.get(id)
      if (set === undefined) listeners.set(id, (set = new Set()))
      set.add(listener)
      if (unsubscribe === null) unsubscribe = conn.subscribe(channel, onMessage)
      return () => {
        set.delete(listener)
        if (set.size === 0) listeners.delete(id)
        if (listeners.size === 0 && unsubscribe !== null) {
          unsubscribe()
          unsubscribe = null
        }
      }
    },

    /** Closes what the store opened: the url form's connections, or the subscriber it duplicated from your client. */
    close() {
      conn.close()
    },
  }
}

module.exports = { redisStore, MAX_MESSAGE }
