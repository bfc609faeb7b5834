'use strict'
// dynamoDbStore against moto_server's DynamoDB with the real @aws-sdk/client-dynamodb: the
// store's contract (versioned conditional saves, fleet-wide permits, TTL on every item), a
// fleet of real processes, count aggregation on and off, and throttling and errors injected
// by a wrapper client.
const test = require('node:test')
const assert = require('node:assert/strict')
const { requireTool, startMoto } = require('./helpers/tools.js')
const { dynamoClient, createTable, faultyClient } = require('./helpers/dynamodb.js')
const { startInstance, until } = require('./helpers/fleet.js')
const { uniq, sleep, recordingLogger } = require('./helpers.js')
const { CircuitBreaker, dynamoDbStore } = require('..')

const TABLE = 'breakwater-circuits'
let moto = null
let admin = null
const instances = []
test.before(async () => {
  const { has } = require('./helpers/tools.js')
  if (!has('moto_server')) return
  moto = await startMoto()
  admin = dynamoClient(moto.endpoint)
  await createTable(admin, TABLE)
})
test.after(async () => {
  await Promise.all(instances.map((i) => i.stop()))
  if (admin) admin.destroy()
  if (moto) await moto.stop()
})


const snap = (name, state = 'OPEN', at = Date.now()) => ({ name, state, forced: false, nextAttemptAt: state === 'OPEN' ? at + 60_000 : null, stateChangedAt: at, savedAt: at })

test('the contract: versioned conditional saves, operator saves, permits, TTL on every item', async (t) => {
  if (!requireTool(t, 'moto_server')) return
  const stores = Array.from({ length: 10 }, () => dynamoDbStore({ client: admin, tableName: TABLE, aggregateCounts: true }))
  const [s] = stores
  const name = uniq('ddb-contract')
  assert.equal(await s.load(name), null)
  assert.deepEqual(await s.save(name, snap(name), { expectedVersion: 0, force: false }), { saved: true, version: 1 })
  const rec = await s.load(name)
  assert.equal(rec.state, 'OPEN')
  assert.equal(rec.version, 1)
  // Ten instances decide at once on version 1: exactly one decision is saved.
  const rs = await Promise.all(stores.map((x) => x.save(name, snap(name, 'HALF_OPEN'), { expectedVersion: 1, force: false })))
  assert.equal(rs.filter((r) => r.saved).length, 1)
  assert.equal((await s.load(name)).version, 2)
  assert.deepEqual(await s.save(name, snap(name, 'CLOSED'), { expectedVersion: 1, force: false }), { saved: false, version: 0 }, 'based on an old version: refused')
  assert.deepEqual(await s.save(name, snap(name, 'CLOSED'), { expectedVersion: 1, force: true }), { saved: true, version: 3 }, "an operator's decision is saved anyway")
  // Permits: none while a newer OPEN stands; max of them otherwise; released ones are free again.
  await s.save(name, { ...snap(name), forced: false }, { expectedVersion: 3, force: false })
  assert.equal(await s.tryAcquireProbe(name, { ttlMs: 5000, max: 1, version: 3 }), false, 'an OPEN (version 4) newer than the asker\'s decision (3)')
  const got = await Promise.all(stores.map((x) => x.tryAcquireProbe(name, { ttlMs: 5000, max: 2, version: 4 })))
  assert.equal(got.filter(Boolean).length, 2, 'exactly max permits fleet-wide')
  const holder = stores[got.indexOf(true)]
  const other = stores[got.indexOf(false)]
  await holder.releaseProbe(name)
  assert.equal(await other.tryAcquireProbe(name, { ttlMs: 5000, max: 2, version: 4 }), true)
  // A crashed holder's permit expires by the asker's own clock, ttlMs after it first saw it.
  const lone = uniq('ddb-expiry')
  assert.equal(await stores[0].tryAcquireProbe(lone, { ttlMs: 1000, max: 1, version: 0 }), true)
  assert.equal(await stores[1].tryAcquireProbe(lone, { ttlMs: 1000, max: 1, version: 0 }), false)
  await sleep(1200)
  assert.equal(await stores[1].tryAcquireProbe(lone, { ttlMs: 1000, max: 1, version: 0 }), true)
  assert.equal(await stores[2].tryAcquireProbe(lone, { ttlMs: 1000, max: 1, version: 0 }), false)
  await stores[0].releaseProbe(lone) // the old holder's late release frees nothing
  assert.equal(await stores[2].tryAcquireProbe(lone, { ttlMs: 1000, max: 1, version: 0 }), false)
  await s.merge(name, { generation: 0, bucketMs: 1000, buckets: 10, epoch: Math.floor(Date.now() / 1000), calls: 3, failures: 1, slowCalls: 0 })
  // Every item has a TTL.
  const { ScanCommand } = require('@aws-sdk/client-dynamodb')
  const { Items } = await admin.send(new ScanCommand({ TableName: TABLE }))
  const ours = Items.filter((i) => i.pk.S.includes(name) || i.pk.S.includes(lone))
  assert.ok(ours.some((i) => i.pk.S.startsWith('c#')) && ours.some((i) => i.pk.S.startsWith('p#')) && ours.some((i) => i.pk.S.startsWith('w#')))
  for (const i of ours) assert.ok(Number(i.ttl && i.ttl.N) > Date.now() / 1000, `${i.pk.S} has a ttl`)
})

test('a fleet of processes: a trip reaches every instance within syncIntervalMs, one probe runs fleet-wide, the fleet closes', async (t) => {
  if (!requireTool(t, 'moto_server')) return
  const name = uniq('ddb-fleet')
  const SYNC = 400
  const cfg = { store: { kind: 'dynamodb', options: { endpoint: moto.endpoint, tableName: TABLE, syncIntervalMs: SYNC, loadTimeoutMs: 1000 } }, breaker: { name, minimumRequests: 2, resetTimeout: 1500, timeout: 0 } }
  const fleet = await Promise.all([0, 1, 2].map(() => startInstance(cfg)))
  instances.push(...fleet)
  const [a, b, c] = fleet
  await a.run({ outcome: 'fail' })
  await a.run({ outcome: 'fail' })
  await until(async () => (await b.state()).state === 'OPEN' && (await c.state()).state === 'OPEN', SYNC + 1000, 'the trip reaches B and C')
  assert.equal((await b.run()).ran, false)
  await sleep(1700)
  const rs = await Promise.all(fleet.map((i) => i.run({ delayMs: 300 })))
  assert.equal(rs.filter((r) => r.ran).length, 1, 'one probe fleet-wide')
  await until(async () => (await Promise.all(fleet.map((i) => i.state()))).every((s) => s.state === 'CLOSED'), SYNC + 1500, 'the fleet closes')
  assert.deepEqual((await b.state()).stats.store, { ...(await b.state()).stats.store, kind: 'dynamodb', healthy: true })
})

test('aggregateCounts off: a healthy circuit only reads; on: the fleet\'s counts trip every instance', async (t) => {
  if (!requireTool(t, 'moto_server')) return
  const quiet = faultyClient(admin)
  const name = uniq('ddb-quiet')
  const b = new CircuitBreaker({ name, store: dynamoDbStore({ client: quiet, tableName: TABLE, syncIntervalMs: 50 }), logger: null })
  for (let i = 0; i < 200; i++) await b.execute(async () => 'ok')
  await sleep(400)
  b.dispose()
  assert.deepEqual(Object.keys(quiet.sent), ['GetItemCommand'], `a healthy circuit wrote nothing: ${JSON.stringify(quiet.sent)}`)
  assert.ok(quiet.sent.GetItemCommand >= 4)

  const name2 = uniq('ddb-counts')
  const store = dynamoDbStore({ client: admin, tableName: TABLE, syncIntervalMs: 100, aggregateCounts: true })
  const log = recordingLogger()
  const c = new CircuitBreaker({ name: name2, store, minimumRequests: 10, logger: log })
  await c.execute(async () => 'ok')
  // Another instance's counts: 9 failures of 9 in the current bucket of generation 0.
  const other = dynamoDbStore({ client: admin, tableName: TABLE, aggregateCounts: true })
  await other.merge(name2, { generation: 0, bucketMs: 6000, buckets: 10, epoch: Math.floor(Date.now() / 6000), calls: 9, failures: 9, slowCalls: 0 })
  await until(() => c.getStats().state === 'OPEN', 2000, 'the fleet window (10 calls, 9 failures) trips this instance')
  assert.match(log.lines.find((l) => /-> OPEN/.test(l.msg)).msg, /fleetFailureRate/)
  c.dispose()
})

test('throttling, errors and a store that hangs: calls never wait past loadTimeoutMs, stats say so, recovery is seen', async (t) => {
  if (!requireTool(t, 'moto_server')) return
  for (const fault of ['throttle', 'error', 'hang']) {
    const client = faultyClient(admin)
    client.fault = fault
    const name = uniq(`ddb-${fault}`)
    const log = recordingLogger()
    const b = new CircuitBreaker({ name, store: dynamoDbStore({ client, tableName: TABLE, syncIntervalMs: 100, loadTimeoutMs: 200 }), consecutiveFailures: 2, resetTimeout: 300, logger: log })
    const t0 = performance.now()
    assert.equal(await b.execute(async () => 'ran'), 'ran')
    const first = performance.now() - t0
    assert.ok(first < 200 + 150, `${fault}: the first call waited ${first.toFixed(0)} ms (loadTimeoutMs 200)`)
    let slowest = 0
    for (let i = 0; i < 20; i++) {
      const t1 = performance.now()
      await b.execute(async () => 'ran')
      slowest = Math.max(slowest, performance.now() - t1)
    }
    assert.ok(slowest < 50, `${fault}: a later call waited ${slowest.toFixed(0)} ms`)
    await sleep(250)
    const st = b.getStats().store
    assert.equal(st.healthy, false, fault)
    assert.ok(st.lastError, fault)
    // A trip while the store fails: local rules; the probe's permit wait is bounded too.
    await b.execute(() => Promise.reject(new Error('x'))).catch(() => {})
    await b.execute(() => Promise.reject(new Error('x'))).catch(() => {})
    assert.equal(b.state, 'OPEN')
    await sleep(350)
    const t2 = performance.now()
    assert.equal(await b.execute(async () => 'probe'), 'probe', `${fault}: the store cannot answer: local rules let the probe run`)
    assert.ok(performance.now() - t2 < 200 + 150, `${fault}: the probe waited ${(performance.now() - t2).toFixed(0)} ms`)
    client.fault = null
    await until(() => b.getStats().store.healthy, 2000, `${fault}: the store is seen healthy again`)
    assert.equal(log.lines.filter((l) => /failed/.test(l.msg)).length, 1, `${fault}: one line when it failed: ${JSON.stringify(log.lines)}`)
    b.dispose()
  }
})

test('dynamoDbStore options are checked, naming the option', () => {
  const client = { send: async () => ({}) }
  assert.throws(() => dynamoDbStore({ tableName: 't' }), { name: 'TypeError', message: /option client must be a DynamoDBClient/ })
  assert.throws(() => dynamoDbStore({ client, tableName: 'x' }), { name: 'TypeError', message: /option tableName/ })
  assert.throws(() => dynamoDbStore({ client, tableName: TABLE, aggregateCounts: 'yes' }), { name: 'TypeError', message: /aggregateCounts/ })
  assert.throws(() => dynamoDbStore({ client, tableName: TABLE, commands: {} }), { name: 'TypeError', message: /commands has no GetItemCommand/ })
  assert.throws(() => dynamoDbStore({ client, tableName: TABLE, syncIntervalMs: -1 }), { name: 'RangeError', message: /syncIntervalMs/ })
})
