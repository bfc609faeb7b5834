'use strict'
// Measurements that need a clean process of their own (spawned by bench.js, one library
// per process, so that libraries do not pollute each other's heap, RSS or registry):
//
//   node --expose-gc benchmark/child.js memory    <lib> <count>
//   node             benchmark/child.js sustained <lib> <seconds> <windowSeconds>
//   node --expose-gc benchmark/child.js stats     breakwater <circuits> <reps>
//
// Prints exactly one JSON line (prefixed with RESULT ) on stdout.

const {
  loadLibs, okFn, failFn, BW_BASE, OP_BASE, cockatielPolicy, uniqueName, makeTarget,
  compileLoop, firstLine
} = require('./targets')

const hr = () => process.hrtime.bigint()
const tick = () => new Promise((resolve) => setImmediate(resolve))

function emit (obj) { process.stdout.write('RESULT ' + JSON.stringify(obj) + '\n') }

async function settle () {
  for (let i = 0; i < 3; i++) { await tick(); global.gc(); }
}

function mem () {
  const m = process.memoryUsage()
  return { heapUsed: m.heapUsed, rss: m.rss, external: m.external, arrayBuffers: m.arrayBuffers }
}

/** How each library makes one breaker, runs one call on it, and releases it. */
function factory (libs, lib) {
  if (lib === 'breakwater' || lib === 'breakwater-defaults') {
    const { CircuitBreaker } = libs.breakwater
    // breakwater-defaults: what most users create (issue 14): nothing but a name
    const base = lib === 'breakwater' ? BW_BASE : {}
    return {
      make: () => new CircuitBreaker({ ...base, name: uniqueName('mem') }),
      call: (b) => b.execute(okFn),
      release: (b) => b.dispose()
    }
  }
  if (lib === 'cockatiel' || lib === 'cockatiel-consecutive') {
    const variant = lib === 'cockatiel' ? 'sampling' : 'consecutive'
    return {
      make: () => cockatielPolicy(libs, variant, false),
      call: (p) => p.execute(okFn),
      release: () => {}
    }
  }
  if (lib === 'opossum') {
    const Opossum = libs.opossum
    return {
      make: () => new Opossum(okFn, { ...OP_BASE }),
      call: (b) => b.fire(),
      release: (b) => b.shutdown()
    }
  }
  if (lib === 'baseline') {
    // an empty object per "breaker": measures the harness itself (array slot + object)
    return { make: () => ({}), call: () => okFn(), release: () => {} }
  }
  throw new Error(`unknown library ${lib}`)
}

async function memory (libs, lib, count) {
  const f = factory(libs, lib)
  // warm up: code paths, lazy module state, the registry's first allocation; and as many
  // awaited calls as the measured run makes, so that V8's young generation has grown to its
  // working size (~16 MiB) before the baseline. Otherwise that one-off growth, which any
  // process serving traffic has already paid and which does not grow with circuits, would be
  // divided by `count` (~1.2 KB of a 10,000-circuit row).
  const warm = []
  for (let i = 0; i < 200; i++) warm.push(f.make())
  for (let k = 0; k < count; k++) await f.call(warm[k % warm.length])
  for (const b of warm) f.release(b)
  warm.length = 0
  const holder = new Array(count) // pre-sized: the array is not part of the delta
  await settle()
  const before = mem()
  for (let i = 0; i < count; i++) holder[i] = f.make()
  await settle()
  const created = mem() // made, never called (issue 14's "around creating")
  for (let i = 0; i < count; i++) await f.call(holder[i]) // one call each: lazily built state exists
  await settle()
  const after = mem()
  const per = {}
  const perCreated = {}
  for (const k of Object.keys(before)) {
    per[k] = (after[k] - before[k]) / count
    perCreated[k] = (created[k] - before[k]) / count
  }
  for (const b of holder) f.release(b)
  return { lib, count, before, created, after, perBreaker: per, perBreakerCreated: perCreated }
}

async function sustained (libs, lib, seconds, windowSeconds) {
  const target = makeTarget(libs, lib, 'success')
  if (!target) throw new Error(`${lib} unavailable`)
  const loop = compileLoop(target)
  const SLICE = 5_000_000n // 5 ms of calls, then yield to the event loop
  const PER_SECOND = 4 // samples of 250 ms: a window's figure is the median of its samples,
  const SAMPLE_NS = 1_000_000_000n / BigInt(PER_SECOND) // which a burst of noise cannot move
  // short warm-up so that the first window measures steady state, not the JIT
  const warmEnd = hr() + 1_000_000_000n
  while (hr() < warmEnd) { await loop(hr() + SLICE); await tick() }
  const samples = []
  const start = hr()
  let secStart = start
  let calls = 0
  for (;;) {
    const r = await loop(hr() + SLICE)
    // yield to the macrotask queue every 5 ms, as a server doing I/O would: libraries
    // that rotate buckets or flush on timers get to run their timers.
    await tick()
    calls += r.n
    const now = hr()
    if (now - secStart >= SAMPLE_NS) {
      const m = process.memoryUsage()
      samples.push({
        t: Number(now - start) / 1e9,
        calls,
        nsPerCall: Number(now - secStart) / calls,
        rss: m.rss,
        heapUsed: m.heapUsed
      })
      secStart = now
      calls = 0
      if (samples.length >= seconds * PER_SECOND) break
    }
  }
  target.check((await loop(0n)).last)
  target.teardown()
  // the first/last `windowSeconds` worth of samples form the two windows
  const agg = (ss) => {
    const calls = ss.reduce((a, s) => a + s.calls, 0)
    const ns = ss.reduce((a, s) => a + s.calls * s.nsPerCall, 0)
    const sorted = ss.map((s) => s.nsPerCall).sort((a, b) => a - b)
    const m = sorted.length >> 1
    const med = sorted.length % 2 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2
    return { nsPerCall: med, meanNsPerCall: ns / calls, rssEnd: ss[ss.length - 1].rss, heapUsedEnd: ss[ss.length - 1].heapUsed, samples: ss.length }
  }
  const total = samples[samples.length - 1].t
  return {
    lib,
    seconds: total,
    windowSeconds,
    first: agg(samples.slice(0, windowSeconds * PER_SECOND)),
    last: agg(samples.slice(-windowSeconds * PER_SECOND)),
    samples
  }
}

async function stats (libs, circuits, reps, warmMs) {
  const { CircuitBreaker, getAllCircuitBreakerStats } = libs.breakwater
  const breakers = []
  for (let i = 0; i < circuits; i++) breakers.push(new CircuitBreaker({ ...BW_BASE, name: `stats-${i}` }))
  // give every circuit some history: successes and a failure, so stats are non-trivial
  for (const b of breakers) {
    for (let k = 0; k < 3; k++) await b.execute(okFn)
    try { await b.execute(failFn) } catch {}
  }
  // The first read of a process (cold code, a young generation that has not grown yet) is
  // reported on its own; the median is taken after the same time-based warm-up as the hot
  // paths (300 ms), so it measures the read and not the heap's growth to its working size.
  let t0 = hr()
  let result = getAllCircuitBreakerStats()
  const firstMs = Number(hr() - t0) / 1e6
  const warmEnd = hr() + BigInt(warmMs) * 1_000_000n
  while (hr() < warmEnd) result = getAllCircuitBreakerStats()
  await settle()
  const times = []
  for (let i = 0; i < reps; i++) {
    t0 = hr()
    result = getAllCircuitBreakerStats()
    times.push(Number(hr() - t0) / 1e6)
  }
  const keys = Object.keys(result)
  const sample = result['stats-0']
  const problems = []
  if (keys.length !== circuits) problems.push(`returned ${keys.length} circuits, expected ${circuits}`)
  if (!sample) problems.push('circuit "stats-0" missing from the result')
  else if (sample.totalRequests !== 4 || sample.successCount !== 3 || sample.failureCount !== 1) {
    problems.push(`circuit "stats-0" counts: totalRequests ${sample.totalRequests}, successCount ${sample.successCount}, failureCount ${sample.failureCount} (expected 4/3/1)`)
  }
  for (const b of breakers) b.dispose()
  return { circuits, reps, warmMs, firstMs, timesMs: times, problems }
}

async function main () {
  const [mode, lib, a, b, c] = process.argv.slice(2)
  const libs = await loadLibs()
  if (lib === 'breakwater' && !libs.breakwater) throw new Error(`breakwater unavailable: ${libs.breakwaterError}`)
  if (mode === 'memory') return emit(await memory(libs, lib, Number(a)))
  if (mode === 'sustained') return emit(await sustained(libs, lib, Number(a), Number(b)))
  if (mode === 'stats') return emit(await stats(libs, Number(a), Number(b), Number(c || 300)))
  throw new Error(`unknown mode ${mode}`)
}

main().catch((err) => {
  emit({ error: firstLine(err) })
  process.exitCode = 1
})
