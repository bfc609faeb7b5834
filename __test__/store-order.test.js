'use strict'
// Fleet correctness on a real redis-server (issue 13): stores that differ only in database or
// prefix never see each other's decisions; decisions are ordered by the store's version, not
// by hosts' wall clocks (a host a day ahead, under libfaketime); records read from the store
// are validated, a bad one ignored and logged once, and a later good one still applies.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const { requireRedis, redisForFile } = require('./helpers/redis.js')
const { startInstance, until } = require('./helpers/fleet.js')
const { uniq, sleep, recordingLogger } = require('./helpers.js')

const { CircuitBreaker, redisStore } = require('..')
const { RedisClient } = require('../lib/store/resp.js')

const SYNC_MS = 300
const FAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1'
const server = redisForFile(test)
const instances = server.instances

function cfg(name, { db = 0, prefix = 'breakwater:', breaker = {} } = {}) {
  return {
    store: { kind: 'redis', options: { url: `${server.redis.url}/${db}`, prefix, syncIntervalMs: SYNC_MS, loadTimeoutMs: 500 } },
    breaker: { name, failureThreshold: 0.5, minimumRequests: 2, resetTimeout: 60_000, timeout: 0, ...breaker },
  }
}

async function start(c, opts) {
  const i = await startInstance(c, opts)
  instances.push(i)
  return i
}

test('stores on two databases, or under two prefixes, never see each other: staging cannot open production', async (t) => {
  if (!requireRedis(t)) return
  const name = uniq('iso')
  const prod = await start(cfg(name, { db: 0 }))
  const staging = await start(cfg(name, { db: 1 }))
  const other = await start(cfg(name, { db: 0, prefix: 'other:' }))
  const prod2 = await start(cfg(name, { db: 0 }))
  await staging.open()
  await other.open()
  await sleep(SYNC_MS * 3)
  const r = await prod.run()
  assert.equal(r.ran, true, 'production still runs its calls')
  assert.equal((await prod.state()).state, 'CLOSED')
  // Trips do not cross either; within one database and prefix they do.
  await staging.close()
  await staging.run({ outcome: 'fail' })
  await staging.run({ outcome: 'fail' })
  await prod2.open()
  await until(async () => (await prod.state()).state === 'OPEN', SYNC_MS + 1000)
  assert.equal((await staging.state()).state, 'OPEN', "staging's own trip")
  assert.equal((await other.state()).state, 'OPEN', "the other prefix's own forced OPEN")
  await prod2.close()
  await until(async () => (await prod.state()).state === 'CLOSED', SYNC_MS + 1000)
  await sleep(SYNC_MS * 2)
  assert.equal((await staging.state()).state, 'OPEN', "production's close did not close staging")
  assert.equal((await other.state()).state, 'OPEN', "nor the other prefix's")
})

test("a host whose clock is a day ahead can neither block nor override the fleet's later decisions", async (t) => {
  if (!requireRedis(t)) return
  if (!fs.existsSync(FAKETIME)) return t.skip('libfaketime is not installed (apt-get install faketime)')
  const name = uniq('skew')
  const c = cfg(name, { breaker: { resetTimeout: 5_000 } })
  const ahead = await start(c, { env: { LD_PRELOAD: FAKETIME, FAKETIME: '+1d', DONT_FAKE_MONOTONIC: '1' } })
  const a = await start(c)
  const b = await start(c)
  await ahead.run()
  assert.ok((await ahead.state()).stats.lastSuccessAt - Date.now() > 23 * 3600e3, 'the host really runs a day ahead')
  await ahead.open()
  await ahead.close()
  await sleep(SYNC_MS * 2)
  assert.equal((await b.run()).ran, true)
  // A trips afterwards: B must follow within a sync, whatever the skewed host wrote before.
  await a.run({ outcome: 'fail' })
  await a.run({ outcome: 'fail' })
  assert.equal((await a.state()).state, 'OPEN')
  await until(async () => (await b.state()).state === 'OPEN', SYNC_MS + 1000)
  const r = await b.runMany({ count: 20 })
  assert.equal(r.ran, 0, 'B sends nothing to the failing dependency')
  const sb = (await b.state()).stats
  assert.equal(sb.store.healthy, true)
  await until(async () => (await ahead.state()).state === 'OPEN', SYNC_MS + 1000)
  // The skewed host trips the fleet: its nextAttemptAt (a day ahead) counts as at most the open
  // period from now on the others.
  await a.close()
  await until(async () => (await b.state()).state === 'CLOSED' && (await ahead.state()).state === 'CLOSED', SYNC_MS + 1000)
  await ahead.run({ outcome: 'fail' })
  await ahead.run({ outcome: 'fail' })
  await until(async () => (await b.state()).state === 'OPEN', SYNC_MS + 1000)
  const open = (await b.state()).stats
  assert.ok(open.retryAfterMs <= 5_000, `retryAfterMs ${open.retryAfterMs} (resetTimeout 5000)`)
  // ... so the fleet probes and closes again on time, with the skewed host's help or without.
  await sleep(5_200)
  assert.equal((await b.run()).ran, true, 'B probes after the open period')
  await until(async () => (await a.state()).state === 'CLOSED' && (await ahead.state()).state === 'CLOSED', SYNC_MS + 1500)
})

test('a store that lost its data (a restart without persistence): the first decision after it reaches hosts that had seen higher versions', async (t) => {
  if (!requireRedis(t)) return
  const name = uniq('lost')
  const c0 = cfg(name, { breaker: { minimumRequests: 1000, consecutiveFailures: 2 } })
  const [a, b] = await Promise.all([start(c0), start(c0)])
  await a.run({ outcome: 'fail' })
  await a.run({ outcome: 'fail' })
  await until(async () => (await b.state()).state === 'OPEN', SYNC_MS + 1000, 'the first trip')
  await a.close()
  await until(async () => (await b.state()).state === 'CLOSED', SYNC_MS + 1000, 'the close')
  const c = new RedisClient({ url: server.redis.url })
  await c.command(['FLUSHALL'])
  c.close()
  // A new instance (it has seen no version) decides first, on the empty store.
  const late = await start(c0)
  await late.open()
  await until(async () => (await a.state()).state === 'OPEN' && (await b.state()).state === 'OPEN', SYNC_MS + 1000, 'A and B follow the decision made after the loss')
  await b.close()
  await until(async () => (await a.state()).state === 'CLOSED' && (await late.state()).state === 'CLOSED', SYNC_MS + 1000, 'and the ones after it')
})

test('records are validated: bad ones are ignored and logged once each, a later good one applies', async (t) => {
  if (!requireRedis(t)) return
  const prefix = `${uniq('val')}:`
  const name = uniq('validate')
  const key = `${prefix}{${name}}:state`
  const store = redisStore({ url: server.redis.url, prefix, syncIntervalMs: 50 })
  const log = recordingLogger()
  const b = new CircuitBreaker({ name, store, resetTimeout: 10_000, logger: log })
  const c = new RedisClient({ url: server.redis.url })
  t.after(() => {
    b.dispose()
    store.close()
    c.close()
  })
  await b.execute(async () => 'ok')
  const put = (version, rec) => c.command(['HSET', key, 'json', typeof rec === 'string' ? rec : JSON.stringify(rec), 'version', String(version)])
  const now = Date.now()
  const warnings = () => log.lines.filter((l) => /not a valid snapshot/.test(l.msg))
  // A state name that is an Object.prototype key, a time far in the future: ignored.
  await put(5, { state: 'constructor', stateChangedAt: 9e15 })
  await sleep(500) // ten syncs read it again
  assert.equal(b.state, 'CLOSED')
  assert.equal(warnings().length, 1, `logged once: ${JSON.stringify(log.lines)}`)
  assert.match(b.getStats().store.lastError, /state "constructor"/)
  assert.equal(b.getStats().store.healthy, false, 'stats say the store holds a bad record')
  // Valid JSON that is not a snapshot: one more line, not one per sync.
  await put(6, { hello: 'world' })
  await sleep(500)
  assert.equal(warnings().length, 2)
  await put(7, 'not json')
  await sleep(300)
  assert.equal(warnings().length, 3)
  // nextAttemptAt in the year 3000 is out of range too.
  await put(8, { state: 'OPEN', forced: false, nextAttemptAt: Date.UTC(3000, 0, 1), stateChangedAt: now })
  await sleep(300)
  assert.equal(b.state, 'CLOSED')
  assert.equal(warnings().length, 4)
  // A good record after the bad ones applies, though its version is lower than a bad one's.
  await put(4, { state: 'OPEN', forced: false, nextAttemptAt: now + 1e9, stateChangedAt: now })
  await until(() => b.getStats().state === 'OPEN', 1000)
  const s = b.getStats()
  assert.ok(s.retryAfterMs <= 10_000, `retryAfterMs ${s.retryAfterMs}: at most the open period (resetTimeout 10000)`)
  assert.equal(s.store.healthy, true)
})
