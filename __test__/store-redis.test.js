'use strict'
// redisStore against a real redis-server on 127.0.0.1 (started here, stopped by pid), with
// real processes as the fleet: one circuit shared by several Node processes.
const test = require('node:test')
const assert = require('node:assert/strict')
const { startRedis, requireRedis } = require('./helpers/redis.js')
const { has } = require('./helpers/tools.js')
const { startInstance, startFleet } = require('./helpers/fleet.js')
const { uniq, sleep } = require('./helpers.js')
const { CircuitBreaker, redisStore } = require('..')

const SYNC_MS = 400
let redis = null
const instances = []

test.before(async () => {
  if (has('redis-server')) redis = await startRedis()
})
test.after(async () => {
  await Promise.all(instances.map((i) => i.stop()))
  if (redis) await redis.stop()
})

function cfg(name, breaker = {}, store = {}) {
  return {
    store: { kind: 'redis', options: { url: redis.url, syncIntervalMs: SYNC_MS, loadTimeoutMs: 500, ...store.options }, noPush: store.noPush },
    breaker: { name, failureThreshold: 0.5, minimumRequests: 2, resetTimeout: 60_000, timeout: 0, ...breaker },
  }
}

async function fleet(n, c) {
  const f = await startFleet(n, c)
  instances.push(...f)
  return f
}

async function stateOf(inst) {
  return (await inst.state()).state
}

for (const push of [true, false]) {
  test(`two processes: one trips the circuit, the other rejects without running its action within syncIntervalMs (${push ? 'pub/sub push' : 'polling only'})`, async (t) => {
    if (!requireRedis(t)) return
    const name = uniq('redis-two')
    const [a, b] = await fleet(2, cfg(name, {}, { noPush: !push }))
    assert.equal((await b.run()).ran, true, 'B runs its action while the circuit is CLOSED')
    await a.run({ outcome: 'fail' })
    const tripped = await a.run({ outcome: 'fail' })
    assert.equal(tripped.ran, true)
    assert.equal(await stateOf(a), 'OPEN')
    await sleep(SYNC_MS + 100) // one sync interval (plus scheduling slack) after A's decision
    const r = await b.run()
    assert.deepEqual({ ok: r.ok, ran: r.ran, error: r.error }, { ok: false, ran: false, error: 'CircuitBreakerOpenError' })
    const s = await b.state()
    assert.equal(s.state, 'OPEN')
    assert.equal(s.transitions.at(-1).reason, 'store', "B's transition says it came from the store")
    assert.equal(s.stats.store.kind, 'redis')
    assert.equal(s.stats.store.healthy, true)
    assert.equal(s.stats.rejectionCount, 1)
    assert.equal(s.stats.failureCount, 0, "B's own counts stay its own")
  })
}

test('a new instance starts OPEN: its first execute waits for the initial load and does not run its action', async (t) => {
  if (!requireRedis(t)) return
  const name = uniq('redis-cold')
  const [a] = await fleet(1, cfg(name))
  await a.run({ outcome: 'fail' })
  await a.run({ outcome: 'fail' })
  assert.equal(await stateOf(a), 'OPEN')
  await sleep(100) // the save is in the background
  const c = await startInstance(cfg(name))
  instances.push(c)
  const r = await c.run()
  assert.equal(r.ran, false, 'the cold instance did not call the dead dependency')
  assert.equal(r.error, 'CircuitBreakerOpenError')
})

for (const max of [1, 2]) {
  test(`five processes against an OPEN circuit after resetTimeout: only halfOpenMaxRequests = ${max} probe(s) run fleet-wide`, async (t) => {
    if (!requireRedis(t)) return
    const name = uniq('redis-probe')
    const c = cfg(name, { resetTimeout: 1_000, halfOpenMaxRequests: max, minimumRequests: 2 })
    const five = await fleet(5, c)
    await five[0].run({ outcome: 'fail' })
    await five[0].run({ outcome: 'fail' })
    // Every instance learns the circuit is OPEN.
    for (let i = 0; i < 50; i++) {
      const states = await Promise.all(five.map(stateOf))
      if (states.every((s) => s === 'OPEN')) break
      await sleep(50)
    }
    assert.deepEqual(await Promise.all(five.map(stateOf)), Array(5).fill('OPEN'))
    await sleep(1_100) // past resetTimeout everywhere
    // All five call at once; each probe is slow (it holds its permit) and fails.
    const results = await Promise.all(five.map((i) => i.run({ outcome: 'fail', delayMs: 300 })))
    const ran = results.filter((r) => r.ran).length
    assert.equal(ran, max, `probes that ran fleet-wide: ${ran} (${JSON.stringify(results.map((r) => [r.ran, r.error]))})`)
    assert.equal(results.filter((r) => r.error === 'CircuitBreakerOpenError').length, 5 - max, 'the others were rejected')
  })
}

test('a frozen instance (a Lambda environment between invocations) catches up on its first turn after the thaw, without blocking that call', async (t) => {
  if (!requireRedis(t)) return
  const name = uniq('redis-thaw')
  // Polling only: a push would arrive in the socket while frozen and hide the catch-up.
  const c = cfg(name, {}, { noPush: true, options: { syncIntervalMs: 2_000 } })
  const [a, b] = await fleet(2, c)
  await b.run()
  process.kill(b.pid, 'SIGSTOP')
  try {
    await a.run({ outcome: 'fail' })
    await a.run({ outcome: 'fail' })
    assert.equal(await stateOf(a), 'OPEN')
    await sleep(2_500) // B's sync is overdue when it wakes
  } finally {
    process.kill(b.pid, 'SIGCONT')
  }
  const first = await b.run({ delayMs: 50 })
  assert.ok(first.ms < 500, `the first call after the thaw did not wait for the store (${first.ms.toFixed(0)} ms)`)
  // The overdue sync ran on the thawed process's first turn: well before another interval.
  let s = null
  for (let k = 0; k < 20; k++) {
    s = await b.state()
    if (s.state === 'OPEN') break
    await sleep(50)
  }
  assert.equal(s.state, 'OPEN', 'caught up without waiting a whole syncIntervalMs')
  assert.equal(s.transitions.at(-1).reason, 'store')
})

test('counts aggregate across instances: failures spread over three processes trip every one of them', async (t) => {
  if (!requireRedis(t)) return
  const name = uniq('redis-fleet-count')
  // 6 calls are needed; each process sees only 2 (a failure and a success): locally 50% of 2
  // calls is below minimumRequests, fleet-wide 3 failures in 6 calls is 50%.
  const three = await fleet(3, cfg(name, { minimumRequests: 6, failureThreshold: 0.5, window: { type: 'time', durationMs: 60_000, buckets: 6 } }))
  for (const i of three) {
    await i.run({ outcome: 'fail' })
    await i.run({ outcome: 'ok' })
  }
  assert.deepEqual(await Promise.all(three.map(stateOf)), Array(3).fill('CLOSED'), 'no process can trip on its own counts')
  let states = []
  for (let k = 0; k < 40; k++) {
    states = await Promise.all(three.map(stateOf))
    if (states.every((s) => s === 'OPEN')) break
    await sleep(50)
  }
  assert.deepEqual(states, Array(3).fill('OPEN'))
  const all = await Promise.all(three.map((i) => i.state()))
  const reasons = all.map((s) => s.transitions.at(-1).reason).sort()
  assert.ok(reasons.includes('fleetFailureRate'), `one of them tripped on the fleet's rate: ${reasons}`)
  const tripper = all.find((s) => s.transitions.at(-1).reason === 'fleetFailureRate')
  assert.ok(tripper.stats.store.fleetWindow.calls >= 6 && tripper.stats.store.fleetWindow.failures >= 3, JSON.stringify(tripper.stats.store.fleetWindow))
})

test('Redis stopped mid-run: no call fails or waits on it, stats say so; after a restart the instances share state again', async (t) => {
  if (!requireRedis(t)) return
  const name = uniq('redis-outage')
  const [a, b] = await fleet(2, cfg(name, { minimumRequests: 4, consecutiveFailures: 4 }))
  await a.runMany({ count: 20, outcome: 'ok' })
  await redis.stop()
  try {
    // 200 calls in each process while Redis is gone, across several sync intervals.
    const [ra, rb] = await Promise.all([a.runMany({ count: 100, outcome: 'ok', delayMs: 5 }), b.runMany({ count: 100, outcome: 'ok', delayMs: 5 })])
    for (const r of [ra, rb]) {
      assert.equal(r.failed, 0, 'no call failed')
      assert.equal(r.ran, 100)
      // A call that waited on the store would take connectTimeoutMs/commandTimeoutMs (1 s).
      assert.ok(r.slowest < 250, `the slowest call took ${r.slowest.toFixed(1)} ms`)
    }
    const down = (await a.state()).stats.store
    assert.equal(down.healthy, false)
    assert.match(down.lastError, /\w/)
    // A decision made while Redis is down stays local...
    for (let i = 0; i < 4; i++) await a.run({ outcome: 'fail' })
    assert.equal(await stateOf(a), 'OPEN')
    assert.equal(await stateOf(b), 'CLOSED')
  } finally {
    await redis.start()
  }
  // ...and reaches the fleet once Redis is back (the save is retried; nothing was persisted).
  // Reconnects back off (full jitter, capped at 5 s), so allow a few intervals of that.
  let sb = null
  for (let k = 0; k < 120; k++) {
    sb = await b.state()
    if (sb.state === 'OPEN' && sb.stats.store.healthy) break
    await sleep(100)
  }
  const sa = await a.state()
  assert.equal(sb.state, 'OPEN', `B learned the decision A made during the outage (A: ${sa.state} ${JSON.stringify(sa.stats.store)}; B: ${JSON.stringify(sb.stats.store)})`)
  assert.equal(sb.stats.store.healthy, true, `B syncs again: ${JSON.stringify(sb.stats.store)}`)
  assert.equal((await a.state()).stats.store.healthy, true)
  assert.equal((await b.run()).ran, false)
})

test('Redis unreachable from the start: local-only, the first call waits at most loadTimeoutMs', async () => {
  // A port nothing listens on: connection refused at once.
  const net = require('node:net')
  const srv = net.createServer().listen(0, '127.0.0.1')
  await new Promise((r) => srv.once('listening', r))
  const port = srv.address().port
  await new Promise((r) => srv.close(r))
  const store = redisStore({ url: `redis://127.0.0.1:${port}`, loadTimeoutMs: 200, syncIntervalMs: 100 })
  const lines = []
  const b = new CircuitBreaker({ name: uniq('redis-none'), store, minimumRequests: 2, logger: { warn: (m) => lines.push(m), info() {}, error() {} } })
  const t0 = performance.now()
  assert.equal(await b.execute(async () => 'v'), 'v')
  assert.ok(performance.now() - t0 < 1_000, 'bounded by loadTimeoutMs, not by a connect timeout')
  await b.execute(() => Promise.reject(new Error('x'))).catch(() => {})
  await b.execute(() => Promise.reject(new Error('x'))).catch(() => {})
  assert.equal(b.state, 'OPEN', 'local rules still trip')
  await sleep(350)
  const s = b.getStats().store
  assert.equal(s.healthy, false)
  assert.match(s.lastError, /./)
  assert.equal(lines.filter((l) => /store \(redis\)/.test(l)).length, 1, `one line when the store went away, not one per sync: ${lines}`)
  b.dispose()
  store.close()
})

test('the keys are namespaced under prefix and TTLd', async (t) => {
  if (!requireRedis(t)) return
  const { RedisClient } = require('../lib/store/resp.js')
  const prefix = `${uniq('ns')}:`
  const store = redisStore({ url: redis.url, prefix, syncIntervalMs: 50 })
  const name = uniq('redis-keys')
  const b = new CircuitBreaker({ name, store, minimumRequests: 3, logger: null })
  await b.execute(async () => 'ok')
  await sleep(200) // a sync merges that call into the fleet's current bucket
  for (let i = 0; i < 3; i++) await b.execute(() => Promise.reject(new Error('x'))).catch(() => {})
  await sleep(200)
  const c = new RedisClient({ url: redis.url })
  try {
    const keys = await c.command(['KEYS', `${prefix}*`])
    assert.ok(keys.some((k) => k.endsWith(':state')) && keys.some((k) => k.includes(':w:')), `a state key and a bucket key: ${keys}`)
    for (const k of keys) {
      assert.ok(k.startsWith(`${prefix}{${name}}:`), k)
      const ttl = await c.command(['PTTL', k])
      assert.ok(ttl > 0, `${k} has a TTL (${ttl})`)
    }
    const snap = JSON.parse(await c.command(['HGET', `${prefix}{${name}}:state`, 'json']))
    assert.equal(snap.state, 'OPEN')
    assert.equal(snap.name, name)
  } finally {
    c.close()
    b.dispose()
    store.close()
  }
})
