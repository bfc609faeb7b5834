'use strict'
// One circuit per name per process, across worker_threads: state and counts are shared.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { Worker } = require('node:worker_threads')
const { CircuitBreaker, getCircuitBreaker, getAllCircuitBreakerStats, CircuitBreakerOpenError } = require('..')
const { uniq, okN, sleep, recordingLogger } = require('./helpers.js')

const FIXTURE = path.join(__dirname, 'fixtures', 'worker-trip.js')

function runWorker(workerData) {
  return new Promise((resolve, reject) => {
    const w = new Worker(FIXTURE, { workerData })
    let msg
    const logs = []
    w.on('message', (m) => {
      if (m && m.log !== undefined) logs.push(m.log)
      else msg = { ...m, logs }
    })
    w.once('error', reject)
    w.once('exit', (code) => {
      if (msg && msg.error) reject(new Error(msg.error))
      else if (code !== 0) reject(new Error(`worker exited with ${code}`))
      else resolve(msg)
    })
  })
}

test('a circuit tripped inside a worker thread is OPEN in the main thread', async () => {
  const options = { name: uniq('workers-trip'), logger: null, timeout: 0, consecutiveFailures: 3, resetTimeout: 10_000 }
  const main = new CircuitBreaker(options)
  assert.equal(main.state, 'CLOSED')
  const r = await runWorker({ mode: 'trip', options, failures: 3 })
  assert.equal(r.state, 'OPEN')
  assert.equal(main.state, 'OPEN')
  let ran = false
  await assert.rejects(main.execute(() => { ran = true }), CircuitBreakerOpenError)
  assert.equal(ran, false)
  const s = main.getStats()
  assert.equal(s.failureCount, 3)
  assert.equal(s.rejectionCount, 1)
})

test('a transition made in a worker reaches main-thread listeners on the next read', async () => {
  const options = { name: uniq('workers-events'), logger: null, timeout: 0, consecutiveFailures: 1, resetTimeout: 10_000 }
  const main = new CircuitBreaker(options)
  const seen = []
  main.on('stateChange', (e) => seen.push(`${e.from}>${e.to}`))
  await runWorker({ mode: 'trip', options, failures: 1 })
  void main.state
  assert.deepEqual(seen, ['CLOSED>OPEN'])
})

test('a circuit created in a worker is visible from the main thread (registry, stats)', async () => {
  const options = { name: uniq('workers-registry'), logger: null, timeout: 0, consecutiveFailures: 2, resetTimeout: 10_000 }
  await runWorker({ mode: 'trip', options, failures: 2 })
  assert.equal(getAllCircuitBreakerStats()[options.name].state, 'OPEN')
  const b = getCircuitBreaker(options.name)
  assert.ok(b instanceof CircuitBreaker)
  assert.equal(b.state, 'OPEN')
  assert.equal(b.getStats().failureCount, 2)
})

test('a worker attaching with different options gets the conflict error', async () => {
  const options = { name: uniq('workers-conflict'), logger: null, timeout: 0, consecutiveFailures: 2 }
  new CircuitBreaker(options)
  await assert.rejects(runWorker({ mode: 'read', options: { ...options, consecutiveFailures: 3 } }), /consecutiveFailures/)
})

test('4 workers x 25,000 successes on one circuit lose no counts', async () => {
  const options = { name: uniq('workers-count'), logger: null, timeout: 0, minimumRequests: 10 }
  const main = new CircuitBreaker(options)
  await okN(main, 10)
  const rs = await Promise.all([0, 1, 2, 3].map(() => runWorker({ mode: 'successes', options, count: 25_000 })))
  for (const r of rs) assert.equal(r.done, true)
  const s = main.getStats()
  assert.equal(s.successCount, 100_010)
  assert.equal(s.totalRequests, 100_010)
  assert.equal(s.failureCount, 0)
  assert.equal(s.state, 'CLOSED')
  assert.equal(getAllCircuitBreakerStats()[options.name].successCount, 100_010)
})

test('4 workers with a count window and a timeout lose no counts either', async () => {
  const options = { name: uniq('workers-count2'), logger: null, timeout: 5_000, window: { type: 'count', size: 1000 } }
  const main = new CircuitBreaker(options)
  await Promise.all([0, 1, 2, 3].map(() => runWorker({ mode: 'successes', options, count: 10_000 })))
  const s = main.getStats()
  assert.equal(s.successCount, 40_000)
  assert.equal(s.window.calls, 1000)
})

test('a transition made in a worker is logged once in the process, not again by the main thread', async () => {
  const logger = recordingLogger()
  const options = { name: uniq('workers-log'), timeout: 0, consecutiveFailures: 1, resetTimeout: 40 }
  const main = new CircuitBreaker({ ...options, logger })
  const r = await runWorker({ mode: 'trip', options: { ...options, logger: null }, failures: 1, logToParent: true })
  // (on a loaded machine the worker's read of b.state may come after resetTimeout and log
  // OPEN -> HALF_OPEN as well: only the trip is this test's business)
  assert.equal(r.logs.filter((l) => /CLOSED -> OPEN/.test(String(l))).length, 1, `the worker logged the trip once: ${JSON.stringify(r.logs)}`)
  await sleep(60)
  await main.execute(() => 'probe')
  assert.equal(main.state, 'CLOSED')
  const trips = logger.lines.filter((l) => /CLOSED -> OPEN/.test(l.msg))
  assert.equal(trips.length, 0, `main thread logged the worker's transition again: ${JSON.stringify(logger.lines)}`)
})

test('dispose() in the main thread makes an instance in a worker reject with BREAKWATER_DISPOSED', async () => {
  const options = { name: uniq('workers-dispose'), logger: null, timeout: 0 }
  const main = new CircuitBreaker(options)
  const w = new Worker(FIXTURE, { workerData: { mode: 'dispose-then-call', options } })
  // listened for now: a worker that posts and ends at once can emit 'exit' in the same turn as
  // its last message, before an `await` on the message resumes
  const exited = new Promise((r) => w.once('exit', r))
  const result = await new Promise((resolve, reject) => {
    w.on('error', reject)
    w.on('message', (m) => {
      if (m.log === 'attached') {
        main.dispose()
        w.postMessage('go')
      } else resolve(m)
    })
  })
  await exited
  assert.equal(result.code, 'BREAKWATER_DISPOSED', JSON.stringify(result))
})

test('a transition made in a worker reaches the main thread\'s listeners without the main thread touching the breaker', async () => {
  const options = { name: uniq('workers-events'), logger: null, timeout: 0, consecutiveFailures: 2 }
  const b = new CircuitBreaker(options)
  const seen = []
  b.on('stateChange', (ev) => seen.push(ev))
  const opened = new Promise((resolve) => b.on('open', resolve))
  await runWorker({ mode: 'trip', options, failures: 2 })
  const ev = await Promise.race([opened, sleep(2_000).then(() => null)])
  assert.ok(ev, 'the open event arrived')
  assert.equal(ev.name, options.name)
  assert.equal(ev.reason, 'consecutiveFailures')
  assert.deepEqual(seen.map((e) => `${e.from}>${e.to}`), ['CLOSED>OPEN'])
})
