'use strict'
// A HALF_OPEN probe permit held by a worker thread is given back when that worker exits —
// terminated from outside (worker.terminate()) or by process.exit() inside it — so the circuit
// never stays HALF_OPEN with no probe actually running (PRODUCT.md, "States and transitions").
// Real worker_threads; the probe's action never settles, so nothing but the exit can free it.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { Worker } = require('node:worker_threads')
const { CircuitBreaker, CircuitBreakerOpenError } = require('../..')
const { uniq, sleep } = require('../helpers.js')

const ROOT = path.join(__dirname, '..', '..')

// The worker attaches to the circuit, takes the only probe with an action that hangs, and
// says so; with `exit`, it then calls process.exit() while the probe is still in flight;
// otherwise it stays alive until terminated, or until told to let its event loop run dry.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const { CircuitBreaker } = require(workerData.root)
const b = new CircuitBreaker(workerData.options)
setTimeout(() => {
  b.execute(() => new Promise(() => {})).catch(() => {})
  parentPort.postMessage({ probing: b.getStats().state })
  // a hung promise does not keep a thread alive: this does, until the test ends the worker
  const alive = setInterval(() => {}, 1_000)
  if (workerData.exit) setTimeout(() => process.exit(0), 20)
  else parentPort.once('message', () => clearInterval(alive))
}, 20)
`

function startProber(options, { exit = false } = {}) {
  const w = new Worker(WORKER, { eval: true, workerData: { root: ROOT, options, exit } })
  const exited = new Promise((resolve) => w.once('exit', resolve))
  const probing = new Promise((resolve, reject) => {
    w.once('message', resolve)
    w.once('error', reject)
    exited.then(() => reject(new Error('worker exited before probing')))
  })
  return { w, probing, exited }
}

/** A HALF_OPEN circuit (opened for 50 ms, then read) and its main-thread breaker. */
async function halfOpenCircuit(prefix, extra = {}) {
  const options = { name: uniq(prefix), logger: null, timeout: 0, resetTimeout: 60_000, ...extra }
  const main = new CircuitBreaker(options)
  main.open(50)
  await sleep(80)
  assert.equal(main.state, 'HALF_OPEN')
  return { main, options }
}

/** Polls until a probe from the main thread runs (and closes the circuit), up to `ms`. */
async function probeRunsWithin(main, ms) {
  const until = performance.now() + ms
  for (;;) {
    const r = await main.execute(() => 'probe ran').catch((e) => e)
    if (r === 'probe ran') return true
    assert.ok(r instanceof CircuitBreakerOpenError, `unexpected ${r}`)
    if (performance.now() > until) return false
    await sleep(20)
  }
}

test('worker.terminate() gives back the HALF_OPEN probe the worker held', async () => {
  const { main, options } = await halfOpenCircuit('faults-terminate')
  const { w, probing } = startProber(options)
  assert.deepEqual(await probing, { probing: 'HALF_OPEN' })
  // the worker's hung call holds the only probe: the main thread is turned away
  await assert.rejects(main.execute(() => 'no'), CircuitBreakerOpenError)
  assert.equal(main.getStats().state, 'HALF_OPEN')
  await w.terminate()
  assert.ok(await probeRunsWithin(main, 2_000), 'no probe admitted within 2 s of terminate()')
  assert.equal(main.state, 'CLOSED')
})

test('a per-call timeout does not have to fire: terminate() frees the probe of a timed call', async () => {
  // The case: timeout 1000 ms, but the timer died with the worker.
  const { main, options } = await halfOpenCircuit('faults-terminate-timed', { timeout: 1_000 })
  const { w, probing } = startProber(options)
  await probing
  await assert.rejects(main.execute(() => 'no'), CircuitBreakerOpenError)
  await w.terminate()
  // well before the dead worker's 1 s timeout could have mattered
  const t0 = performance.now()
  assert.ok(await probeRunsWithin(main, 2_000))
  assert.ok(performance.now() - t0 < 900, 'freed by the exit, not by waiting out a timeout')
  assert.equal(main.state, 'CLOSED')
})

test('process.exit() inside a worker gives back its probe', async () => {
  const { main, options } = await halfOpenCircuit('faults-exit')
  const { probing, exited } = startProber(options, { exit: true })
  await probing
  assert.equal(await exited, 0)
  assert.ok(await probeRunsWithin(main, 2_000), 'no probe admitted within 2 s of the worker exiting')
  assert.equal(main.state, 'CLOSED')
})

test('a worker whose event loop runs dry while its probe hangs gives it back as it ends', async () => {
  const { main, options } = await halfOpenCircuit('faults-dry')
  const { w, probing, exited } = startProber(options)
  await probing
  await assert.rejects(main.execute(() => 'no'), CircuitBreakerOpenError)
  w.postMessage('let go')
  assert.equal(await exited, 0)
  assert.ok(await probeRunsWithin(main, 2_000))
  assert.equal(main.state, 'CLOSED')
})

test('a worker that exits after its calls settled leaves its successes in the circuit', async () => {
  const options = { name: uniq('faults-exit-counts'), logger: null, timeout: 0 }
  const main = new CircuitBreaker(options)
  const code = `
    const { parentPort, workerData } = require('node:worker_threads')
    const { CircuitBreaker } = require(workerData.root)
    const b = new CircuitBreaker(workerData.options)
    Promise.all(Array.from({ length: 100 }, (_, i) => b.execute(() => i))).then(() => process.exit(0))
  `
  const w = new Worker(code, { eval: true, workerData: { root: ROOT, options } })
  assert.equal(await new Promise((r) => w.once('exit', r)), 0)
  assert.equal(main.getStats().successCount, 100)
})
