#!/usr/bin/env node
'use strict'
// Soak test: N calls through breakers on every path — the CLOSED fast path, timed calls,
// failures (sync throws and rejections), a flaky dependency that trips, rejects, half-opens
// and recovers over and over, real timeouts of actions that never settle, and breakers
// created and disposed along the way — sampling RSS and heapUsed every 1M calls.
//
//   node --expose-gc scripts/soak.js [calls=10000000]
//
// Verdict "flat": the last sample is within +20 MB RSS and +10% heapUsed of the sample at
// 2M calls (the first sample when fewer than 3M calls run). Without --expose-gc the heap
// figures include garbage not yet collected, so the verdict is only indicative.
// It also checks that no count is lost: for each breaker, successes + failures + rejections
// equal the calls it was given. Exit code 1 on a lost count or a growing footprint.

const { CircuitBreaker } = require('..')

const N = Number(process.argv[2] || 10_000_000)
if (!Number.isInteger(N) || N < 1000) {
  console.error(`usage: node --expose-gc scripts/soak.js [calls >= 1000], got ${process.argv[2]}`)
  process.exit(2)
}
const SAMPLE_EVERY = 1_000_000
const BATCH = 1000
const MB = 1024 * 1024

const fb = () => 'fallback'
const common = { logger: null, fallback: fb }
// 100 ms time buckets: the fast path flushes its batched successes at every bucket end
const fast = new CircuitBreaker({ name: 'soak-fast', timeout: 0, window: { type: 'time', durationMs: 2000, buckets: 20 }, ...common })
const timed = new CircuitBreaker({ name: 'soak-timed', timeout: 1000, window: { type: 'count', size: 100 }, ...common })
const flaky = new CircuitBreaker({
  name: 'soak-flaky',
  timeout: 0,
  resetTimeout: 20,
  minimumRequests: 10,
  window: { type: 'count', size: 20 },
  halfOpenMaxRequests: 2,
  ...common,
})
const hang = new CircuitBreaker({ name: 'soak-timeout', timeout: 1, minimumRequests: 1000, ...common })

const ERR = new Error('boom')
const ok = () => 1
const okAsync = () => Promise.resolve(2)
const throwSync = () => {
  throw ERR
}
const rejectAsync = () => Promise.reject(ERR)
const never = () => new Promise(() => {})

const given = { fast: 0, timed: 0, flaky: 0, hang: 0 }
let hangingTimeouts = 0
let churned = 0
let churnCalls = 0

// Timed-out calls resolve (with the fallback) ~10 ms later; they are awaited in the background
// so the batches do not wait for timers.
const pendingTimeouts = new Set()

function gc() {
  if (typeof global.gc === 'function') {
    global.gc()
    global.gc()
  }
}

function sample(calls, t0) {
  gc()
  const m = process.memoryUsage()
  return { calls, seconds: (performance.now() - t0) / 1000, rss: m.rss, heapUsed: m.heapUsed, external: m.external }
}

async function churn(k) {
  // a breaker that lives for a few calls, then is disposed: its circuit and lane slots go back
  const b = new CircuitBreaker({ name: `soak-churn-${k}`, timeout: 0, ...common })
  const ps = []
  for (let i = 0; i < 10; i++) ps.push(b.execute(i % 3 === 0 ? throwSync : ok))
  await Promise.all(ps)
  churnCalls += 10
  b.getStats()
  b.dispose()
  churned++
}

async function main() {
  const t0 = performance.now()
  const samples = [sample(0, t0)]
  const ps = new Array(BATCH)
  let done = 0
  let batchNo = 0
  while (done < N) {
    const n = Math.min(BATCH, N - done)
    for (let i = 0; i < n; i++) {
      const j = (done + i) % 1000
      if (j < 600) {
        given.fast++
        ps[i] = fast.execute(j % 50 === 7 ? throwSync : j % 50 === 31 ? rejectAsync : j & 1 ? ok : okAsync)
      } else if (j < 850) {
        given.timed++
        ps[i] = timed.execute(j % 20 === 3 ? rejectAsync : j % 20 === 11 ? throwSync : okAsync)
      } else if (j < 990) {
        given.flaky++
        ps[i] = flaky.execute(j % 5 < 3 ? rejectAsync : ok)
      } else {
        given.hang++
        if (j === 995 && batchNo % 4 === 0) {
          hangingTimeouts++
          const p = hang.execute(never)
          pendingTimeouts.add(p)
          p.then(() => pendingTimeouts.delete(p))
          ps[i] = undefined
        } else {
          ps[i] = hang.execute(j & 1 ? ok : okAsync)
        }
      }
    }
    await Promise.all(n === BATCH ? ps : ps.slice(0, n))
    const before = done
    done += n
    batchNo++
    if (Math.floor(done / 100_000) !== Math.floor(before / 100_000)) await churn(churned)
    // let the timers of timed-out calls fire now and then
    if (batchNo % 50 === 0) await new Promise((r) => setImmediate(r))
    if (Math.floor(done / SAMPLE_EVERY) !== Math.floor(before / SAMPLE_EVERY) || done === N) {
      // measure at a quiet point: the batch's promises dropped, pending callbacks run
      ps.fill(undefined)
      await new Promise((r) => setImmediate(r))
      samples.push(sample(done, t0))
      const s = samples[samples.length - 1]
      process.stderr.write(`  ${fmtCalls(done)} calls, ${s.seconds.toFixed(1)} s\n`)
    }
  }
  // wait for the last timeouts
  while (pendingTimeouts.size > 0) await Promise.all([...pendingTimeouts])
  const final = sample(done, t0)
  report(samples, final)
}

function fmtCalls(n) {
  return n >= 1e6 ? `${(n / 1e6).toFixed(n % 1e6 ? 2 : 0)}M` : `${n}`
}

function report(samples, final) {
  const seconds = final.seconds
  console.log(`breakwater soak: ${N.toLocaleString('en-US')} calls in ${seconds.toFixed(1)} s (${Math.round(N / seconds).toLocaleString('en-US')} calls/s), node ${process.version}, gc ${typeof global.gc === 'function' ? 'forced before each sample' : 'NOT exposed (run with --expose-gc)'}`)
  console.log('')
  console.log('| calls | elapsed s | RSS MB | heapUsed MB | external MB |')
  console.log('|---:|---:|---:|---:|---:|')
  for (const s of samples) {
    console.log(`| ${fmtCalls(s.calls)} | ${s.seconds.toFixed(1)} | ${(s.rss / MB).toFixed(1)} | ${(s.heapUsed / MB).toFixed(2)} | ${(s.external / MB).toFixed(2)} |`)
  }
  console.log('')

  // counts: nothing lost
  let lost = false
  const lines = []
  for (const [key, b] of Object.entries({ fast, timed, flaky, hang })) {
    const s = b.getStats()
    const counted = s.successCount + s.failureCount + s.rejectionCount + s.ignoredCount
    const okCount = counted === given[key] && s.totalRequests === counted
    if (!okCount) lost = true
    lines.push(`  ${s.name}: given ${given[key]}, counted ${counted} (success ${s.successCount}, failure ${s.failureCount}, timeout ${s.timeoutCount}, rejected ${s.rejectionCount}, fallback ${s.fallbackCount}), state ${s.state}${okCount ? '' : '  <-- LOST COUNTS'}`)
  }
  const hs = hang.getStats()
  if (hs.timeoutCount !== hangingTimeouts) {
    lost = true
    lines.push(`  soak-timeout: ${hangingTimeouts} actions never settled, timeoutCount ${hs.timeoutCount}  <-- MISMATCH`)
  }
  const fl = flaky.getStats()
  console.log('counts:')
  for (const l of lines) console.log(l)
  console.log(`  ${churned} breakers created and disposed (${churnCalls} calls); soak-flaky went through ${fl.rejectionCount} rejections`)
  console.log('')

  const base = samples.find((s) => s.calls === 2 * SAMPLE_EVERY) || samples[1] || samples[0]
  const last = samples[samples.length - 1]
  const dRss = (last.rss - base.rss) / MB
  const dHeap = (last.heapUsed - base.heapUsed) / base.heapUsed
  const flat = dRss <= 20 && dHeap <= 0.1
  console.log(`memory: from ${fmtCalls(base.calls)} to ${fmtCalls(last.calls)} calls: RSS ${dRss >= 0 ? '+' : ''}${dRss.toFixed(1)} MB (limit +20), heapUsed ${dHeap >= 0 ? '+' : ''}${(dHeap * 100).toFixed(1)}% (limit +10%)`)
  console.log(`verdict: ${flat ? 'flat' : 'GROWING'}${lost ? ', LOST COUNTS' : ', no count lost'}`)
  process.exitCode = flat && !lost ? 0 : 1
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
