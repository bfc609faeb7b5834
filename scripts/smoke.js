#!/usr/bin/env node
'use strict'
// A quick smoke test of breakwater's public API, runnable by any Node binary (20+) against
// any copy of the package:
//
//   node scripts/smoke.js                          # the repo itself
//   node scripts/smoke.js path/to/node_modules/breakwater
//   qemu-aarch64-static -L <sysroot> arm64/node scripts/smoke.js <dir>   # see arm64-smoke.sh
//
// It loads the package from <dir> (through its real loader, so it also checks that the
// right platform binary is found), then: creates a breaker, runs a success and a failure,
// trips it, checks rejection, fallback, timeout, stats, EMF output, and that a circuit
// tripped in a worker_thread is OPEN in the main thread. Prints one line per check and the
// binary that was loaded; exits non-zero on the first failure. Uses only node: built-ins.

const assert = require('node:assert/strict')
const path = require('node:path')
const { Worker, isMainThread, workerData, parentPort } = require('node:worker_threads')

if (!isMainThread) {
  // Worker side: attach to the same circuit and trip it.
  const { CircuitBreaker } = require(workerData.dir)
  ;(async () => {
    const b = new CircuitBreaker(workerData.options)
    for (let i = 0; i < workerData.options.consecutiveFailures; i++) {
      await b.execute(() => Promise.reject(new Error('worker failure'))).catch(() => {})
    }
    parentPort.postMessage({ state: b.state, failures: b.getStats().failureCount })
  })().catch((e) => parentPort.postMessage({ error: String(e && e.stack || e) }))
  return
}

const dir = path.resolve(process.argv[2] || path.join(__dirname, '..'))
const started = Date.now()
let checks = 0
function ok(what) {
  checks++
  console.log(`  ok ${checks} - ${what}`)
}

async function main() {
  console.log(`breakwater smoke: node ${process.version} ${process.platform}-${process.arch}, package ${dir}`)
  const bw = require(dir)
  const binaries = () => Object.keys(require.cache).filter((f) => f.endsWith('.node'))
  // The binary is opened by the first breaker, not by the import (cold start, issue 16).
  assert.deepEqual(binaries(), [], 'no native binary opened by the import itself')
  new bw.CircuitBreaker({ name: `smoke-load-${process.pid}`, logger: null }).dispose()
  const loaded = binaries()
  assert.equal(loaded.length, 1, `expected one native binary loaded by the first breaker, got ${JSON.stringify(loaded)}`)
  ok(`loaded native binary ${loaded[0]}`)

  const { CircuitBreaker, CircuitBreakerOpenError, CircuitBreakerTimeoutError, CircuitState, getAllCircuitBreakerStats, emitEmf } = bw
  for (const name of ['CircuitBreaker', 'CircuitBreakerOpenError', 'CircuitBreakerTimeoutError', 'createExternalServiceCircuitBreaker',
    'getAllCircuitBreakerStats', 'getHealthSummary', 'toPrometheus', 'toCloudWatchMetricData', 'emitEmf']) {
    assert.equal(typeof bw[name], 'function', `export ${name}`)
  }
  assert.equal(CircuitState.OPEN, 'OPEN')
  ok('public exports present')

  // The ESM entry (package.json exports["."].import) names every export of the CommonJS entry
  // and gives its very objects; Node finds the names by scanning that file (cjs-module-lexer),
  // whose behaviour is Node's own, so this runs under every Node version.
  const target = require(path.join(dir, 'package.json')).exports['.'].import
  const esm = await import(require('node:url').pathToFileURL(path.join(dir, target)).href)
  assert.equal(esm.default, bw, 'the ESM default export is the CommonJS exports object')
  for (const k of Object.keys(bw)) assert.equal(esm[k], bw[k], `ESM named export ${k}`)
  ok(`ESM entry ${target}: the same ${Object.keys(bw).length} exports`)

  const name = `smoke-${process.pid}`
  const b = new CircuitBreaker({ name, logger: null, consecutiveFailures: 3, resetTimeout: 60_000, timeout: 0 })
  assert.equal(b.state, 'CLOSED')
  assert.equal(await b.execute(() => 42), 42)
  assert.equal(await b.execute(async () => 'async'), 'async')
  ok('execute: success resolves the action value')

  await assert.rejects(b.execute(() => { throw new Error('sync boom') }), /sync boom/)
  await assert.rejects(b.execute(() => Promise.reject(new Error('async boom'))), /async boom/)
  assert.equal(b.state, 'CLOSED')
  ok('execute: failures reject with the action error')

  await assert.rejects(b.execute(() => Promise.reject(new Error('third'))), /third/)
  assert.equal(b.state, 'OPEN')
  let ran = false
  const rejected = await b.execute(() => { ran = true }).catch((e) => e)
  assert.equal(ran, false)
  assert.ok(rejected instanceof CircuitBreakerOpenError)
  assert.ok(rejected instanceof Error)
  assert.equal(rejected.name, 'CircuitBreakerOpenError')
  assert.equal(rejected.circuit, name)
  assert.ok(rejected.retryAfterMs > 0 && rejected.retryAfterMs <= 60_000)
  ok('trips OPEN after 3 consecutive failures; rejects without running the action')

  const s = b.getStats()
  assert.equal(s.name, name)
  assert.equal(s.state, 'OPEN')
  assert.equal(s.successCount, 2)
  assert.equal(s.failureCount, 3)
  assert.equal(s.rejectionCount, 1)
  assert.equal(s.totalRequests, 6)
  assert.equal(typeof s.failureRate, 'number')
  assert.equal(JSON.parse(JSON.stringify(s)).name, name)
  assert.equal(getAllCircuitBreakerStats()[name].state, 'OPEN')
  ok(`stats: ${JSON.stringify({ state: s.state, totalRequests: s.totalRequests, failureRate: s.failureRate })}`)

  b.reset()
  assert.equal(b.state, 'CLOSED')
  const fb = new CircuitBreaker({ name: `${name}-fb`, logger: null, timeout: 50, fallback: (e) => `fallback:${e.name}` })
  assert.equal(await fb.execute((signal) => new Promise((resolve) => signal.addEventListener('abort', () => resolve('late')))), 'fallback:CircuitBreakerTimeoutError')
  const t = new CircuitBreaker({ name: `${name}-t`, logger: null, timeout: 30 })
  await assert.rejects(t.execute(() => new Promise(() => {})), CircuitBreakerTimeoutError)
  ok('timeout aborts the signal; fallback answers; reset() closes')

  const lines = []
  const docs = emitEmf({ namespace: 'Smoke', write: (l) => lines.push(l) })
  assert.ok(Array.isArray(docs) && docs.length > 0)
  assert.ok(lines.length > 0 && JSON.parse(lines[0].trim())._aws)
  ok(`emitEmf: ${docs.length} EMF documents`)

  const options = { name: `${name}-worker`, logger: null, consecutiveFailures: 2, resetTimeout: 60_000, timeout: 0 }
  const mainSide = new CircuitBreaker(options)
  const r = await new Promise((resolve, reject) => {
    const w = new Worker(__filename, { workerData: { dir, options } })
    let msg
    w.on('message', (m) => { msg = m })
    w.once('error', reject)
    w.once('exit', (code) => (code === 0 && msg && !msg.error ? resolve(msg) : reject(new Error(`worker: exit ${code} ${msg && msg.error}`))))
  })
  assert.equal(r.state, 'OPEN')
  assert.equal(mainSide.state, 'OPEN')
  assert.equal(mainSide.getStats().failureCount, 2)
  ok('a circuit tripped in a worker_thread is OPEN in the main thread')

  console.log(`breakwater smoke: ${checks} checks passed in ${Date.now() - started} ms (node ${process.version}, ${process.arch})`)
}

// breakwater's timeout timer is unref'd (it never keeps a process alive), so hold the event
// loop open ourselves while the checks await, and treat an early exit as a failure.
const keepAlive = setInterval(() => {}, 1000)
let finished = false
process.on('exit', (code) => {
  if (!finished && code === 0) {
    console.error(`breakwater smoke FAILED: exited after ${checks} checks without finishing`)
    process.exitCode = 1
  }
})

main().then(() => {
  finished = true
  clearInterval(keepAlive)
}, (e) => {
  finished = true
  console.error(`breakwater smoke FAILED (node ${process.version}, ${process.platform}-${process.arch}):`)
  console.error(e && e.stack || e)
  process.exit(1)
})
