'use strict'
// redisStore({ client }) with the user's own client: ioredis, iovalkey and node-redis (`redis`),
// each standalone (a real redis-server) and as a Cluster client (a real three-master Redis
// Cluster on 127.0.0.1). Real processes share one circuit: a trip reaches the others by push,
// one probe runs fleet-wide, the fleet closes again; a database of its own stays apart.
const test = require('node:test')
const assert = require('node:assert/strict')
const { requireRedis, redisForFile, startRedisCluster } = require('./helpers/redis.js')
const { has } = require('./helpers/tools.js')
const { startInstance, until } = require('./helpers/fleet.js')
const { uniq, sleep } = require('./helpers.js')
const { redisStore } = require('..')

const SYNC_MS = 5000 // longer than any wait below: decisions must arrive by push
const server = redisForFile(test)
let cluster = null
test.before(async () => {
  if (has('redis-server')) cluster = await startRedisCluster()
})
test.after(async () => {
  if (cluster) await cluster.stop()
})


for (const lib of ['ioredis', 'iovalkey', 'redis']) {
  for (const onCluster of [false, true]) {
    test(`${lib}${onCluster ? ' Cluster' : ''}: a trip reaches the fleet, one probe runs fleet-wide, the fleet closes again`, async (t) => {
      if (!requireRedis(t)) return
      const name = uniq(`client-${lib}`)
      const cfg = (db = 0) => ({
        store: {
          kind: 'redis-client',
          options: {
            syncIntervalMs: SYNC_MS,
            loadTimeoutMs: 1000,
            client: { lib, cluster: onCluster, url: `${server.redis.url}/${db}`, nodes: cluster && cluster.nodes },
          },
        },
        breaker: { name, failureThreshold: 0.5, minimumRequests: 2, resetTimeout: 1500, timeout: 0 },
      })
      const start = async (c) => {
        const i = await startInstance(c)
        server.instances.push(i)
        return i
      }
      const [a, b] = await Promise.all([start(cfg()), start(cfg())])
      const apart = onCluster ? null : await start(cfg(1)) // same prefix, database 1
      await sleep(1000) // subscriptions are made in the background (a missed push waits for the next pull)
      await a.run({ outcome: 'fail' })
      await a.run({ outcome: 'fail' })
      assert.equal((await a.state()).state, 'OPEN')
      await until(async () => (await b.state()).state === 'OPEN', 1500, 'B follows the trip (push)')
      const sb = await b.state()
      assert.equal(sb.transitions.at(-1).reason, 'store')
      assert.deepEqual([sb.stats.store.kind, sb.stats.store.healthy], ['redis', true])
      if (apart) {
        assert.equal((await apart.run()).ran, true, 'a store on another database never sees it')
      }
      // After the open period both are HALF_OPEN locally; the store grants one permit.
      await sleep(1700)
      const [ra, rb] = await Promise.all([a.run({ delayMs: 300 }), b.run({ delayMs: 300 })])
      assert.equal(Number(ra.ran) + Number(rb.ran), 1, `one probe fleet-wide (A ran: ${ra.ran}, B ran: ${rb.ran})`)
      await until(async () => (await a.state()).state === 'CLOSED' && (await b.state()).state === 'CLOSED', 2000, 'the fleet closes (push)')
      assert.equal((await b.run()).ran, true)
      if (apart) assert.equal((await apart.state()).state, 'CLOSED')
    })
  }
}

test('redisStore({ client }) refuses what is not a Redis client, and url with client, naming the option', () => {
  assert.throws(() => redisStore({ client: {} }), { name: 'TypeError', message: /option client must be a connected ioredis, iovalkey or node-redis/ })
  assert.throws(() => redisStore({ client: { evalsha() {} }, url: 'redis://h' }), { name: 'TypeError', message: /exactly one of url .* and client/ })
  assert.throws(() => redisStore({}), { name: 'TypeError', message: /exactly one of url/ })
})
