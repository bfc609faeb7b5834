'use strict'
// dynamoDbStore({ client, tableName }): one circuit for a fleet of Lambda environments on
// DynamoDB (no VPC), with the user's own DynamoDBClient (AWS SDK v3).
//
// One table, string partition key `pk`, no sort key, TTL on `ttl`, on-demand billing:
//   <keyPrefix>c#<name>                  the circuit: snapshot (JSON), version, state, forced, ttl
//   <keyPrefix>p#<name>#<slot>           a probe permit: holder, ttl
//   <keyPrefix>w#<name>#<gen>#<epoch>    the fleet's counts of one time bucket: c, f, s, ttl
//                                         (only with aggregateCounts: true)
// Every item carries `ttl` (epoch seconds), so DynamoDB deletes what nobody renews.
//
// - Decisions: PutItem conditional on the version the decision was based on (`attribute_not_exists
//   (pk) OR version <= :expected`), the new version being expected + 1; a refused one lost a race
//   (link.js adopts the stored decision). An operator's decision reads the current version first.
// - Probe permits: one item per slot, taken with `attribute_not_exists(pk)`. DynamoDB has no
//   server clock to expire a permit by, and hosts' clocks may disagree by a day, so a permit is
//   expired by the asker's own monotonic clock: a holder token this instance has seen in a slot
//   for longer than ttlMs is stale, and the slot is taken over with `holder = :stale`. A slow
//   clock never shortens a permit; a host that crashed holding one blocks the fleet for ttlMs.
// - Counts (aggregateCounts: true): one UpdateItem ADD per sync with calls to add, and one
//   BatchGetItem of the window's buckets. Off (the default), a healthy CLOSED circuit costs one
//   GetItem per syncIntervalMs and no write at all.
// - Fail-open: every error (throttling included) is a store failure link.js reports; the
//   breaker runs on local state.
//
// The commands (GetItemCommand, ...) come from the user's @aws-sdk/client-dynamodb, never from
// breakwater's folder, where a bundled SDK never is: pass `commands`, or breakwater resolves the
// package from the application (its main module's folder, then the working directory, then
// Lambda's runtime).

const { randomUUID } = require('node:crypto')
const path = require('node:path')
const { createRequire } = require('node:module')
const { num, show, storeTimings } = require('../options.js')
const { Held } = require('./held.js')

const NEEDED = ['GetItemCommand', 'PutItemCommand', 'UpdateItemCommand', 'DeleteItemCommand', 'BatchGetItemCommand']
const MAX_SNAPSHOT = 16 * 1024

const isConditionFailed = (e) => e !== null && typeof e === 'object' &&
  (e.name === 'ConditionalCheckFailedException' || String(e.__type || '').endsWith('ConditionalCheckFailedException'))
const corrupt = (why) => Object.assign(new Error(why), { code: 'BREAKWATER_STORE_CORRUPT' })

/** The command classes: given, or required from the application's point of view. */
function resolveCommands(given) {
  if (given !== undefined) {
    if (given === null || typeof given !== 'object') throw new TypeError(`breakwater: dynamoDbStore option commands must be the module object of @aws-sdk/client-dynamodb (or an object with ${NEEDED.join(', ')}), got ${show(given)}`)
    for (const n of NEEDED) {
      if (typeof given[n] !== 'function') throw new TypeError(`breakwater: dynamoDbStore option commands has no ${n} (pass require('@aws-sdk/client-dynamodb'))`)
    }
    return given
  }
  const from = [require.main && require.main.filename, path.join(process.cwd(), 'index.js')].filter(Boolean)
  for (const f of from) {
    try {
      return createRequire(f)('@aws-sdk/client-dynamodb')
    } catch {}
  }
  try {
    return require('@aws-sdk/client-dynamodb') // Lambda's runtime has it on the module path
  } catch {}
  throw new TypeError("breakwater: dynamoDbStore cannot load @aws-sdk/client-dynamodb from your application (bundled?): pass its commands, dynamoDbStore({ client, tableName, commands: require('@aws-sdk/client-dynamodb') })")
}

/**
 * @param {{ client: { send(command: any): Promise<any> }, tableName: string, commands?: object,
 *   keyPrefix?: string, aggregateCounts?: boolean, stateTtlMs?: number, syncIntervalMs?: number,
 *   loadTimeoutMs?: number }} opts
 */
function dynamoDbStore(opts) {
  if (opts === null || typeof opts !== 'object') throw new TypeError(`breakwater: dynamoDbStore(options) needs { client, tableName }, got ${show(opts)}`)
  const { client, tableName, keyPrefix = '', aggregateCounts = false, stateTtlMs = 7 * 24 * 3600 * 1000 } = opts
  if (client === null || typeof client !== 'object' || typeof client.send !== 'function') throw new TypeError(`breakwater: dynamoDbStore option client must be a DynamoDBClient (AWS SDK v3), got ${show(client)}`)
  if (typeof tableName !== 'string' || !/^[A-Za-z0-9_.-]{3,255}$/.test(tableName)) throw new TypeError(`breakwater: dynamoDbStore option tableName must be a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -), got ${show(tableName)}`)
  if (typeof keyPrefix !== 'string' || keyPrefix.length > 200) throw new TypeError(`breakwater: dynamoDbStore option keyPrefix must be a string of at most 200 characters, got ${show(keyPrefix)}`)
  if (typeof aggregateCounts !== 'boolean') throw new TypeError(`breakwater: dynamoDbStore option aggregateCounts must be a boolean, got ${show(aggregateCounts)}`)
  num('store.stateTtlMs', stateTtlMs, { min: 1000, max: 2 ** 46, int: true, unit: ' (ms)' })
  const { syncIntervalMs, loadTimeoutMs } = storeTimings(opts)
  const C = resolveCommands(opts.commands)

  const me = randomUUID()
  let seq = 0
  const held = new Held() // { slot, holder } of each permit this instance holds
  const seen = new Map() // permit key -> { holder, since (performance.now()) }: for expiry by our own clock
  const ttl = (ms) => ({ N: String(Math.ceil((Date.now() + ms) / 1000)) })
  const circuitKey = (name) => ({ S: `${keyPrefix}c#${name}` })
  const permitKey = (name, slot) => `${keyPrefix}p#${name}#${slot}`
  const send = (Cmd, input) => client.send(new Cmd({ TableName: tableName, ...input }))

  async function current(name) {
    const out = await send(C.GetItemCommand, { Key: { pk: circuitKey(name) }, ConsistentRead: true })
    return out && out.Item ? out.Item : null
  }

  function recordOf(item) {
    const json = item.snapshot && item.snapshot.S
    if (typeof json !== 'string') throw corrupt('the circuit item has no snapshot string')
    if (json.length > MAX_SNAPSHOT) throw corrupt(`a stored snapshot of ${json.length} characters (at most ${MAX_SNAPSHOT})`)
    let rec
    try {
      rec = JSON.parse(json)
    } catch {
      throw corrupt('the stored snapshot is not JSON')
    }
    if (rec === null || typeof rec !== 'object') throw corrupt('the stored snapshot is not an object')
    if (item.version && item.version.N !== undefined) rec.version = Number(item.version.N)
    return rec
  }

  async function put(name, snap, version, condition, values) {
    await send(C.PutItemCommand, {
      Item: {
        pk: circuitKey(name),
        snapshot: { S: JSON.stringify(snap) },
        version: { N: String(version) },
        state: { S: String(snap.state) },
        forced: { BOOL: snap.forced === true },
        ttl: ttl(stateTtlMs),
      },
      ConditionExpression: condition,
      ExpressionAttributeValues: values,
    })
  }

  const store = {
    kind: 'dynamodb',
    syncIntervalMs,
    loadTimeoutMs,
    client,

    async load(name) {
      const item = await current(name)
      return item === null ? null : recordOf(item)
    },

    async save(name, snap, { expectedVersion = 0, force = false } = {}) {
      if (!force) {
        try {
          await put(name, snap, expectedVersion + 1, 'attribute_not_exists(pk) OR version <= :e', { ':e': { N: String(expectedVersion) } })
          return { saved: true, version: expectedVersion + 1 }
        } catch (e) {
          if (isConditionFailed(e)) return { saved: false, version: 0 }
          throw e
        }
      }
      // An operator's decision: after whatever the table holds, whatever it was based on.
      for (let attempt = 0; ; attempt++) {
        const item = await current(name)
        const at = item !== null && item.version ? Number(item.version.N) || 0 : 0
        const version = Math.max(at, expectedVersion) + 1
        try {
          if (item === null) await put(name, snap, version, 'attribute_not_exists(pk)', undefined)
          else await put(name, snap, version, 'version = :at', { ':at': { N: String(at) } })
          return { saved: true, version }
        } catch (e) {
          if (!isConditionFailed(e) || attempt >= 4) throw e
        }
      }
    },

    async tryAcquireProbe(name, { ttlMs, max, version = 0 }) {
      const item = await current(name)
      if (item !== null && item.state && item.state.S === 'OPEN') {
        if (item.forced && item.forced.BOOL === true) return false
        if (item.version && Number(item.version.N) > version) return false
      }
      for (let slot = 0; slot < max; slot++) {
        const key = permitKey(name, slot)
        const holder = `${me}:${++seq}`
        const stale = seen.get(key)
        const expired = stale !== undefined && performance.now() - stale.since > ttlMs
        try {
          await send(C.PutItemCommand, {
            Item: { pk: { S: key }, holder: { S: holder }, ttl: ttl(Math.max(ttlMs, 3600_000)) },
            ConditionExpression: expired ? 'attribute_not_exists(pk) OR holder = :stale' : 'attribute_not_exists(pk)',
            ExpressionAttributeValues: expired ? { ':stale': { S: stale.holder } } : undefined,
          })
        } catch (e) {
          if (!isConditionFailed(e)) throw e
          // Held: note who holds it, and since when by our clock, to expire it later.
          const out = await send(C.GetItemCommand, { Key: { pk: { S: key } }, ConsistentRead: true })
          const h = out && out.Item && out.Item.holder && out.Item.holder.S
          if (typeof h === 'string' && (stale === undefined || stale.holder !== h)) seen.set(key, { holder: h, since: performance.now() })
          continue
        }
        seen.delete(key)
        held.add(name, { slot, holder }, (p) => p.slot === slot)
        return true
      }
      return false
    },

    async releaseProbe(name) {
      const permit = held.take(name)
      if (permit === undefined) return
      const { slot, holder } = permit
      try {
        await send(C.DeleteItemCommand, {
          Key: { pk: { S: permitKey(name, slot) } },
          ConditionExpression: 'holder = :h', // only if it is still ours
          ExpressionAttributeValues: { ':h': { S: holder } },
        })
      } catch (e) {
        if (!isConditionFailed(e)) throw e
      }
    },
  }

  if (aggregateCounts) {
    /** Adds counts to the current bucket (if any) and reads the window's buckets. */
    store.merge = async (name, { generation, bucketMs, buckets, epoch, calls, failures, slowCalls }) => {
      const key = (e) => ({ pk: { S: `${keyPrefix}w#${name}#${generation}#${e}` } })
      if (calls > 0) {
        await send(C.UpdateItemCommand, {
          Key: key(epoch),
          UpdateExpression: 'ADD c :c, f :f, s :s SET #t = :t',
          ExpressionAttributeNames: { '#t': 'ttl' },
          ExpressionAttributeValues: { ':c': { N: String(calls) }, ':f': { N: String(failures) }, ':s': { N: String(slowCalls) }, ':t': ttl(bucketMs * (buckets + 1) + 3600_000) },
        })
      }
      const keys = []
      for (let e = epoch - buckets + 1; e <= epoch; e++) keys.push(key(e))
      const out = await client.send(new C.BatchGetItemCommand({ RequestItems: { [tableName]: { Keys: keys, ProjectionExpression: 'c, f, s' } } }))
      let c = 0
      let f = 0
      let s = 0
      for (const it of (out && out.Responses && out.Responses[tableName]) || []) {
        c += Number(it.c && it.c.N) || 0
        f += Number(it.f && it.f.N) || 0
        s += Number(it.s && it.s.N) || 0
      }
      return { calls: c, failures: f, slowCalls: s }
    }
  }
  return store
}

module.exports = { dynamoDbStore }
