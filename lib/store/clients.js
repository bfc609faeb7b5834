'use strict'
// The two ways redisStore talks to Redis, behind one small interface:
//   { db, client, eval(script, keys, args), subscribe(channel, onMessage) -> unsubscribe, close() }
// - respConnection: breakwater's own RESP client (resp.js), for redisStore({ url }).
// - userConnection: the user's connected ioredis / iovalkey / node-redis client, standalone or
//   Cluster, for redisStore({ client }). Every command has a deadline here (commandTimeoutMs):
//   a user's client may queue commands while it reconnects, and a sync must not wait on that.
//
// Pub/sub on a Cluster: classic PUBLISH reaches subscribers on every node, so one subscriber
// connection anywhere hears every circuit's channel. ioredis and node-redis each manage that
// connection for their Cluster client (ioredis: a duplicate Cluster; node-redis: the cluster's
// own subscribe(), which picks a node and follows topology changes).

const { RedisClient, parseRedisUrl } = require('./resp.js')

const NOSCRIPT = /NOSCRIPT/

/** Rejects with BREAKWATER_STORE_TIMEOUT if `p` does not settle within `ms`. */
function deadline(p, ms, what) {
  let timer
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`redis ${what} took longer than ${ms} ms`), { code: 'BREAKWATER_STORE_TIMEOUT' })), ms)
    timer.unref()
  })
  return Promise.race([p, t]).finally(() => clearTimeout(timer))
}

/** EVALSHA, then EVAL when the server has not cached the script (first use, restart, flush). */
async function evalCached(evalsha, evalLua, script, keys, args) {
  try {
    return await evalsha(script.sha, keys, args)
  } catch (e) {
    if (!NOSCRIPT.test(e && e.message)) throw e
    return evalLua(script.lua, keys, args)
  }
}

function respConnection({ url, connectTimeoutMs, commandTimeoutMs, maxMessage }) {
  let parsed
  try {
    parsed = parseRedisUrl(url)
  } catch (e) {
    throw new TypeError(`breakwater: redisStore option ${e.message.replace(/^breakwater: /, '')}`)
  }
  const client = new RedisClient({ url, connectTimeoutMs, commandTimeoutMs, maxMessage })
  const evalsha = (sha, keys, args) => client.command(['EVALSHA', sha, keys.length, ...keys, ...args])
  const evalLua = (lua, keys, args) => client.command(['EVAL', lua, keys.length, ...keys, ...args])
  return {
    db: parsed.db,
    client,
    eval: (script, keys, args) => evalCached(evalsha, evalLua, script, keys, args),
    subscribe: (channel, onMessage) => client.subscribe(channel, onMessage),
    close: () => client.close(),
  }
}

/** Which client library made `c`: 'ioredis' (ioredis and iovalkey), 'node-redis', or null. */
function flavour(c) {
  if (c === null || typeof c !== 'object') return null
  if (typeof c.evalsha === 'function' && typeof c.duplicate === 'function' && typeof c.on === 'function') return 'ioredis'
  if (typeof c.evalSha === 'function' && typeof c.eval === 'function') return 'node-redis'
  return null
}

function userConnection(c, { commandTimeoutMs }) {
  const kind = flavour(c)
  if (kind === null) throw new TypeError('breakwater: redisStore option client must be a connected ioredis, iovalkey or node-redis (redis v4+) client or Cluster client')
  const timed = (p, what) => deadline(p, commandTimeoutMs, what)
  let closers = new Set()
  const close = () => {
    const cs = closers
    closers = new Set()
    for (const f of cs) f()
  }

  if (kind === 'ioredis') {
    const db = c.isCluster ? 0 : Number((c.options && c.options.db) || 0)
    const evalsha = (sha, keys, args) => c.evalsha(sha, keys.length, ...keys, ...args)
    const evalLua = (lua, keys, args) => c.eval(lua, keys.length, ...keys, ...args)
    return {
      db,
      client: c,
      eval: (script, keys, args) => timed(evalCached(evalsha, evalLua, script, keys, args), 'script'),
      subscribe(channel, onMessage) {
        // A connection in subscribe mode runs nothing else: a duplicate of the user's client
        // (same host, auth, TLS; for a Cluster, a Cluster), ended with the store or the client.
        const sub = c.duplicate()
        sub.on('error', () => {}) // it reconnects by itself; the command path reports health
        sub.on('message', (ch, m) => { if (ch === channel) onMessage(m) })
        sub.subscribe(channel).catch(() => {})
        const end = () => {
          closers.delete(end)
          c.removeListener('end', end)
          sub.disconnect()
        }
        c.once('end', end) // the user quit their client: its duplicate goes with it
        closers.add(end)
        return end
      },
      close,
    }
  }

  // node-redis (`redis` v4+): a RedisClient or a RedisCluster.
  const cluster = typeof c.getSlotMaster === 'function' || Array.isArray(c.masters)
  const db = cluster ? 0 : Number((c.options && c.options.database) || 0)
  const evalsha = (sha, keys, args) => c.evalSha(sha, { keys, arguments: args })
  const evalLua = (lua, keys, args) => c.eval(lua, { keys, arguments: args })
  return {
    db,
    client: c,
    eval: (script, keys, args) => timed(evalCached(evalsha, evalLua, script, keys, args), 'script'),
    subscribe(channel, onMessage) {
      const listener = (m) => onMessage(m)
      let sub = null
      let done = false
      if (cluster) {
        c.subscribe(channel, listener).catch(() => {})
      } else {
        sub = c.duplicate()
        sub.on('error', () => {})
        sub.connect().then(() => (done ? undefined : sub.subscribe(channel, listener))).catch(() => {})
      }
      const end = () => {
        if (done) return
        done = true
        closers.delete(end)
        c.removeListener('end', end)
        if (sub === null) Promise.resolve().then(() => c.unsubscribe(channel, listener)).catch(() => {})
        else Promise.resolve().then(() => (typeof sub.destroy === 'function' ? sub.destroy() : sub.disconnect())).catch(() => {})
      }
      c.once('end', end)
      closers.add(end)
      return end
    },
    close,
  }
}

module.exports = { respConnection, userConnection, flavour }
