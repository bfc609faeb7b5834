'use strict'
// One worker_thread of the threads benchmark: attach to the shared circuit (same name,
// same options), warm up, wait at the barrier, then run success-path calls for a fixed
// time budget and report how many completed.

const { parentPort, workerData } = require('node:worker_threads')
const { loadLibs, okFn, BW_BASE, firstLine } = require('./targets')

const hr = () => process.hrtime.bigint()

async function main () {
  const { lib, name, budgetMs, warmMs, barrier } = workerData
  const libs = await loadLibs()
  let call
  let breaker = null
  if (lib === 'breakwater') {
    if (!libs.breakwater) throw new Error(`breakwater unavailable: ${libs.breakwaterError}`)
    breaker = new libs.breakwater.CircuitBreaker({ ...BW_BASE, name })
    call = () => breaker.execute(okFn)
  } else if (lib === 'baseline') {
    call = okFn
  } else {
    throw new Error(`unknown library ${lib}`)
  }
  const BATCH = 256
  // dedicated monomorphic loop (see targets.compileLoop)
  const loop = async (n) => { let last; for (let i = 0; i < n; i++) last = await call(); return last }

  let warmCalls = 0
  const warmEnd = hr() + BigInt(warmMs) * 1_000_000n
  while (hr() < warmEnd) { await loop(BATCH); warmCalls += BATCH }

  const flags = new Int32Array(barrier) // [0] = ready count, [1] = go
  Atomics.add(flags, 0, 1)
  Atomics.notify(flags, 0)
  Atomics.wait(flags, 1, 0) // block until the main thread says go

  let calls = 0
  const start = hr()
  const end = start + BigInt(budgetMs) * 1_000_000n
  let last
  while (hr() < end) { last = await loop(BATCH); calls += BATCH }
  const elapsedNs = Number(hr() - start)
  if (last !== 1) throw new Error(`expected calls to resolve to 1, got ${String(last)}`)
  parentPort.postMessage({ calls, warmCalls, elapsedNs })
  // no dispose(): other threads are still attached; the main thread disposes the circuit
}

main().catch((err) => parentPort.postMessage({ error: firstLine(err) }))
