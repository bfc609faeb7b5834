'use strict'
// A breakwater store on Amazon DynamoDB (AWS SDK v3). An example to copy, not part of the
// package: `new CircuitBreaker({ name: 'stripe', store: dynamoDbStore({ client, tableName }) })`.
//
// One table, string partition key `pk`, no sort key:
//   circuit#<name>         { snapshot: <JSON string>, state, stateChangedAt }
//   probe#<name>#<slot>    { holder, expiresAt (epoch ms), ttl (epoch s, DynamoDB TTL) }
//
// Every write is conditional, so many Lambda environments can write at once:
// - save() only replaces a snapshot whose stateChangedAt is older (last writer by
//   stateChangedAt wins, whatever order the writes arrive in);
// - a probe permit is one of `max` slot items, taken with "absent or expired"; DynamoDB
//   evaluates the condition and the write atomically, so two callers never get one slot.
// Expiry compares expiresAt with the caller's clock (DynamoDB has no server-side "now"):
// keep the fleet's clocks in sync (Lambda's are) and ttlMs well above the skew.
// The `ttl` attribute only lets DynamoDB delete old permit items (hours later); it is not
// what makes a permit expire.

const { randomUUID } = require('node:crypto')
const {
  GetItemCommand, PutItemCommand, DeleteItemCommand, CreateTableCommand, DescribeTableCommand,
  UpdateTimeToLiveCommand,
} = require('@aws-sdk/client-dynamodb')

const isConditionFailed = (err) => err && (err.name === 'ConditionalCheckFailedException' ||
  (err.__type || '').endsWith('ConditionalCheckFailedException'))

/** The ordering key of a snapshot: stateChangedAt, or 0 when it has none (never overwrites). */
function orderOf(snapshot) {
  const t = snapshot && snapshot.stateChangedAt
  return typeof t === 'number' && Number.isFinite(t) ? t : 0
}

/**
 * @param {{ client: import('@aws-sdk/client-dynamodb').DynamoDBClient, tableName: string,
 *   keyPrefix?: string, loadTimeoutMs?: number, syncIntervalMs?: number }} options
 */
function dynamoDbStore({ client, tableName, keyPrefix = '', loadTimeoutMs, syncIntervalMs } = {}) {
  if (!client || typeof client.send !== 'function') throw new TypeError('dynamoDbStore: client must be a DynamoDBClient')
  if (typeof tableName !== 'string' || tableName === '') throw new TypeError('dynamoDbStore: tableName must be a non-empty string')

  const instance = randomUUID() // this store instance, as a permit holder
  let seq = 0
  const held = new Map() // circuit name -> [{ slot, holder }], oldest first

  const circuitKey = (name) => ({ S: `${keyPrefix}circuit#${name}` })
  const probeKey = (name, slot) => ({ S: `${keyPrefix}probe#${name}#${slot}` })

  const store = {
    async load(name) {
      const out = await client.send(new GetItemCommand({
        TableName: tableName,
        Key: { pk: circuitKey(name) },
        ConsistentRead: true, // a write from another instance a moment ago must be seen
      }))
      if (!out.Item || !out.Item.snapshot) return null
      return JSON.parse(out.Item.snapshot.S)
    },

    async save(name, snapshot) {
      try {
        await client.send(new PutItemCommand({
          TableName: tableName,
          Item: {
            pk: circuitKey(name),
            snapshot: { S: JSON.stringify(snapshot) },
            state: { S: String(snapshot.state) },
            stateChangedAt: { N: String(orderOf(snapshot)) },
          },
          ConditionExpression: 'attribute_not_exists(pk) OR stateChangedAt < :t',
          ExpressionAttributeValues: { ':t': { N: String(orderOf(snapshot)) } },
        }))
      } catch (err) {
        if (isConditionFailed(err)) return // the stored snapshot is as new or newer: ours is ignored
        throw err
      }
    },

    async tryAcquireProbe(name, { ttlMs, max }) {
      const now = Date.now()
      const expiresAt = now + ttlMs
      for (let slot = 0; slot < max; slot++) {
        const holder = `${instance}:${++seq}`
        try {
          await client.send(new PutItemCommand({
            TableName: tableName,
            Item: {
              pk: probeKey(name, slot),
              holder: { S: holder },
              expiresAt: { N: String(expiresAt) },
              ttl: { N: String(Math.ceil(expiresAt / 1000)) },
            },
            ConditionExpression: 'attribute_not_exists(pk) OR expiresAt < :now',
            ExpressionAttributeValues: { ':now': { N: String(now) } },
          }))
        } catch (err) {
          if (isConditionFailed(err)) continue // taken and not expired: try the next slot
          throw err
        }
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
      try {
        await client.send(new DeleteItemCommand({
          TableName: tableName,
          Key: { pk: probeKey(name, slot) },
          // Only if it is still ours: after expiry someone else may hold this slot.
          ConditionExpression: 'holder = :h',
          ExpressionAttributeValues: { ':h': { S: holder } },
        }))
      } catch (err) {
        if (isConditionFailed(err)) return
        throw err
      }
    },
  }
  if (loadTimeoutMs !== undefined) store.loadTimeoutMs = loadTimeoutMs
  if (syncIntervalMs !== undefined) store.syncIntervalMs = syncIntervalMs
  return store
}

/**
 * Creates the table (on-demand capacity, `pk` string hash key) with TTL on `ttl`, and waits
 * until it is ACTIVE. A table that already exists is left as it is.
 */
async function createTable(client, tableName) {
  try {
    await client.send(new CreateTableCommand({
      TableName: tableName,
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
    }))
  } catch (err) {
    if (err.name !== 'ResourceInUseException') throw err
  }
  const deadline = Date.now() + 120_000
  for (;;) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }))
    if (Table.TableStatus === 'ACTIVE') break
    if (Date.now() > deadline) throw new Error(`table ${tableName} is not ACTIVE after 120 s (${Table.TableStatus})`)
    await new Promise((r) => setTimeout(r, 500))
  }
  try {
    await client.send(new UpdateTimeToLiveCommand({
      TableName: tableName,
      TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
    }))
  } catch (err) {
    // Already enabled (on a table that existed) is fine.
    if (!/already enabled/i.test(err.message || '')) throw err
  }
}

module.exports = { dynamoDbStore, createTable }
