'use strict'
// `enabled: false` is metrics-only (resilience4j's METRICS_ONLY): every call runs, outcomes are
// recorded like any other (window, rates, counters, success/failure events), but no outcome of
// it ever changes the circuit's state — here, in another thread, or through a store.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { Worker } = require('node:worker_threads')
const { CircuitBreaker } = require('..')
const { uniq, sleep, failN, okN, recordingLogger } = require('./helpers.js')

const base = (extra) => ({ name: uniq('metrics-only'), timeout: 0, minimumRequests: 10, consecutiveFailures: 3, resetTimeout: 60_000, ...extra })

test('50 failures through a disabled breaker: recorded, but no transition, event or log line', async () => {
  const logger = recordingLogger()
  const b = new CircuitBreaker({ ...base(), enabled: false, logger })
  const seen = []
  for (const e of ['stateChange', 'open', 'halfOpen', 'close']) b.on(e, () => seen.push(e))
  let failures = 0
  let successes = 0
  b.on('failure', () => failures++)
  b.on('success', () => successes++)
  await failN(b, 50)
  assert.equal(await b.execute(() => 'ran'), 'ran')
  const s = b.getStats()
  assert.equal(s.state, 'CLOSED')
  assert.equal(s.enabled, false)
  assert.deepEqual(seen, [])
  assert.deepEqual(logger.lines, [])
  // dashboards stay true
  assert.equal(s.failureCount, 50)
  assert.equal(s.successCount, 1)
  assert.deepEqual(s.window, { calls: 51, failures: 50, successes: 1, slowCalls: 0 })
  assert.ok(s.failureRate > 98)
  assert.equal(failures, 50)
  assert.equal(successes, 1)
})

test('a shouldTrip predicate of a disabled breaker is never asked to trip', async () => {
  let asked = 0
  const b = new CircuitBreaker({ ...base(), enabled: false, logger: null, shouldTrip: () => { asked++; return true } })
  await failN(b, 5)
  assert.equal(b.state, 'CLOSED')
  assert.equal(asked, 0)
})

test('an enabled and a disabled instance of one circuit: only the enabled one\'s outcomes decide', async () => {
  const o = base({ consecutiveFailures: 0, logger: null })
  const on = new CircuitBreaker(o)
  const off = new CircuitBreaker({ ...o, enabled: false })
  await failN(off, 50)
  assert.equal(on.state, 'CLOSED')
  assert.equal(await on.execute(() => 'runs'), 'runs', 'the enabled instance keeps letting calls through')
  // 4 failures of 10 enabled calls: 40% < 50%. Had the 50 disabled failures voted, it would be open.
  await okN(on, 5)
  await failN(on, 4)
  assert.equal(on.state, 'CLOSED')
  // the stats show every outcome, the enabled instance's and the disabled one's
  const s = on.getStats()
  assert.equal(s.failureCount, 54)
  assert.equal(s.window.calls, 60)
  // the enabled instance's own outcomes still trip it, and the disabled one keeps running
  await failN(on, 2)
  assert.equal(on.state, 'OPEN')
  assert.equal(await off.execute(() => 'still runs'), 'still runs')
})

test('a disabled breaker in a worker thread cannot trip the circuit for the main thread', async () => {
  const o = base({ logger: null })
  const main = new CircuitBreaker(o)
  const seen = []
  main.on('stateChange', (e) => seen.push(e.to))
  const code = `
    const { workerData, parentPort } = require('node:worker_threads')
    const { CircuitBreaker } = require(workerData.root)
    const w = new CircuitBreaker({ ...workerData.options, enabled: false })
    ;(async () => {
      for (let i = 0; i < 50; i++) await w.execute(() => Promise.reject(new Error('down'))).catch(() => {})
      parentPort.postMessage(w.state)
    })()
  `
  const w = new Worker(code, { eval: true, workerData: { root: path.join(__dirname, '..'), options: o } })
  // listened for now: a worker that posts and ends at once can emit 'exit' in the same turn as
  // its last message, before an `await` on the message resumes
  const exited = new Promise((r) => w.once('exit', r))
  const state = await new Promise((r) => w.once('message', r))
  await exited
  assert.equal(state, 'CLOSED')
  await sleep(20)
  assert.equal(main.state, 'CLOSED')
  assert.deepEqual(seen, [])
  assert.equal(main.getStats().failureCount, 50)
  assert.equal(await main.execute(() => 'runs'), 'runs')
})

test('through a store: a disabled instance publishes no decision and adds nothing to the fleet\'s window', async () => {
  // A custom store that aggregates the fleet's counts (merge) and records every save.
  const saves = []
  const merged = { calls: 0, failures: 0, slowCalls: 0 }
  let merges = 0
  const store = {
    syncIntervalMs: 20,
    async load() { return null },
    async save(name, snap) { saves.push(snap.state) },
    async merge(name, d) {
      merges++
      merged.calls += d.calls
      merged.failures += d.failures
      merged.slowCalls += d.slowCalls
      return { ...merged }
    },
  }
  const b = new CircuitBreaker({ ...base(), enabled: false, logger: null, store })
  await failN(b, 50)
  await sleep(200)
  assert.equal(b.state, 'CLOSED')
  assert.deepEqual(saves.filter((s) => s !== 'CLOSED'), [])
  assert.ok(merges > 0, 'the store was never asked to merge')
  assert.equal(merged.failures, 0, 'disabled failures reached the fleet window')
  assert.equal(b.getStats().failureCount, 50)
  b.dispose()
})
