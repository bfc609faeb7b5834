'use strict'
// breakwater benchmark harness: breakwater vs cockatiel@4 vs opossum@10 vs a bare
// `await fn()`, in one run. See benchmark/README.md for the methodology.
//
//   node benchmark/bench.js            full run (< 5 min), writes benchmark/results.json
//                                      and refreshes the results section of README.md
//   node benchmark/bench.js --quick    smoke test (< 90 s), writes benchmark/results-quick.json
//   --only=micro,user,memory,sustained,threads,cold,cold-start,scale,stats   run a subset
//   --no-readme                        do not touch README.md

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const v8 = require('node:v8')
const vm = require('node:vm')
const { spawnSync } = require('node:child_process')
const { Worker } = require('node:worker_threads')

const {
  ROOT, sanitize, firstLine, loadLibs, BW_BASE, LIBRARIES, LIB_LABEL, SCENARIOS, makeTarget,
  compileLoop, uniqueName
} = require('./targets')
const { runUserLoop, userTable, userProblems } = require('./user-loop')
const { runColdStart, coldGoals, coldTable } = require('./cold-start')

const argv = process.argv.slice(2)
const QUICK = argv.includes('--quick')
const onlyArg = argv.find((a) => a.startsWith('--only='))
const ONLY = onlyArg ? new Set(onlyArg.slice(7).split(',')) : null
const UPDATE_README = !QUICK && !ONLY && !argv.includes('--no-readme')
const want = (section) => !ONLY || ONLY.has(section)

const CFG = QUICK
  ? {
      micro: { rounds: 3, runMs: 40, warmMs: 80 },
      user: { rounds: 3, runMs: 40, warmMs: 60 },
      memory: { count: 10000 },
      sustained: { breakwater: { seconds: 4, window: 1 }, opossum: { seconds: 3, window: 1 } },
      threads: { budgetMs: 500, warmMs: 200, reps: 1 },
      cold: { rounds: 5 },
      coldStart: { rounds: 5 },
      stats: { circuits: 1000, reps: 7, warmMs: 80 },
      scale: { circuits: 10000, reps: 3 }
    }
  : {
      micro: { rounds: 11, runMs: 80, warmMs: 300 },
      user: { rounds: 9, runMs: 100, warmMs: 300 },
      memory: { count: 10000 },
      sustained: { breakwater: { seconds: 12, window: 2 }, opossum: { seconds: 8, window: 2 } },
      threads: { budgetMs: 1000, warmMs: 300, reps: 3 },
      cold: { rounds: 15 },
      coldStart: { rounds: 25 },
      stats: { circuits: 1000, reps: 25, warmMs: 300 },
      scale: { circuits: 10000, reps: 7 }
    }

const GOALS = {
  successOverhead: 0.5, // × cockatiel's overhead
  timeoutOverhead: 1.25, // × breakwater's own no-timeout overhead
  failureOverhead: 0.5, // × cockatiel's overhead
  openReject: 0.3, // × cockatiel's rejection time
  openFallback: 0.1, // × cockatiel's rejection time
  memory: 0.5, // × cockatiel's heap per breaker
  sustainedNs: 1.25, // last window ns/call ≤ 1.25 × first window
  sustainedRssMB: 20, // last window RSS ≤ first + 20 MB
  threads: 1.5, // 4 threads / 1 thread aggregate throughput
  coldStart: 1.15, // × cockatiel's cold start
  statsMs: 1, // getAllCircuitBreakerStats() over 1,000 circuits
  redisOverhead: 1.1 // success-path overhead with redisStore ≤ 1.1 × without a store
}

// Issue 14: the user-shaped loop, default options, footprint per circuit, scale.
const GOALS14 = {
  success: 0.5, // overhead × cockatiel ConsecutiveBreaker's
  failure: 0.5, // overhead (new Error per call) × cockatiel ConsecutiveBreaker's
  defaultsVsOwn: 2.0, // default options' overhead × breakwater's own no-timeout overhead
  defaultsVsOpossum: 0.25, // default options' overhead × opossum's (with its timeout)
  openReject: 0.3, // × cockatiel's rejection time
  openFallback: 0.1, // × cockatiel's rejection time
  heap: 0.5, // heap per default breaker × cockatiel's policy (ConsecutiveBreaker)
  processBytes: 2048, // whole process (RSS) per circuit, bytes
  prometheus: 0.2 // toPrometheus() per exposed line × prom-client's registry.metrics()
}

/**
 * A redis-server on 127.0.0.1 for the "breakwater + redisStore" row (stopped by pid after the
 * hot paths); null, with a note, where redis-server is not installed.
 */
async function startBenchRedis (libs) {
  if (!libs.breakwater) return null
  const { startRedis } = require('../__test__/helpers/redis.js')
  let redis
  try {
    redis = await startRedis()
  } catch (err) {
    log(`  note: no redis-server (${firstLine(err)}): the redisStore row is skipped`)
    return null
  }
  libs.redisStore = libs.breakwater.redisStore({ url: redis.url })
  return redis
}

/**
 * moto_server's DynamoDB on 127.0.0.1 for the "breakwater + dynamoDbStore" row (stopped by pid
 * after the hot paths); null, with a note, where moto_server is not installed.
 */
async function startBenchMoto (libs) {
  if (!libs.breakwater) return null
  let moto
  try {
    const { startMoto } = require('../__test__/helpers/tools.js')
    const { dynamoClient, createTable } = require('../__test__/helpers/dynamodb.js')
    moto = await startMoto()
    const client = dynamoClient(moto.endpoint)
    await createTable(client, 'bench-circuits')
    libs.dynamoDbStore = libs.breakwater.dynamoDbStore({ client, tableName: 'bench-circuits' })
    moto.client = client
  } catch (err) {
    if (moto) await moto.stop()
    log(`  note: no moto_server DynamoDB (${firstLine(err)}): the dynamoDbStore row is skipped`)
    return null
  }
  return moto
}

const hr = () => process.hrtime.bigint()
const tick = () => new Promise((resolve) => setImmediate(resolve))
const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (!s.length) return NaN
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}
const quantile = (xs, q) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  return s.length ? s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] : NaN
}
/** Reject if `promise` has not settled within `ms` (a call that never settles must not end the run). */
function watchdog (promise, ms, what) {
  let timer
  const t = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result after ${ms} ms (a promise never settled?)`)), ms)
  })
  return Promise.race([promise, t]).finally(() => clearTimeout(timer))
}
const log = (...a) => console.error(...a) // progress goes to stderr; tables go to stdout

// gc() without requiring `node --expose-gc` on the command line (npm run bench runs plain node)
v8.setFlagsFromString('--expose-gc')
const gc = global.gc || vm.runInNewContext('gc')

let stage = 'startup'
let finished = false
process.on('exit', (code) => {
  if (!finished && code === 0) {
    console.error(`bench: the process ran out of work during "${stage}" — a promise never settled ` +
      '(e.g. an execute() that never resolves). Results are incomplete.')
    process.exitCode = 1
  }
})

// ---------------------------------------------------------------------------------------
// Machine

function machine () {
  let cpu = os.cpus()[0]?.model || 'unknown'
  try {
    const m = fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m)
    if (m) cpu = m[1].trim()
  } catch {}
  return {
    nproc: typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length,
    cpu,
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform}-${process.arch}`,
    totalMemGB: Math.round(os.totalmem() / 2 ** 30 * 10) / 10
  }
}

// ---------------------------------------------------------------------------------------
// 1–5: hot paths

/** What an Error costs on this machine (rejection paths are dominated by it). */
function calibrateErrors () {
  const time = (f) => {
    for (let i = 0; i < 2000; i++) f()
    const times = []
    for (let r = 0; r < 5; r++) {
      const t0 = hr()
      for (let i = 0; i < 20000; i++) f()
      times.push(Number(hr() - t0) / 20000)
    }
    return median(times)
  }
  let sink
  const newError = time(() => { sink = new Error('x') })
  const noStack = time(() => {
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    sink = new Error('x')
    Error.stackTraceLimit = limit
  })
  return { newErrorNs: newError, newErrorNoStackNs: noStack, sink: typeof sink }
}

async function runMicro (libs) {
  const { rounds, runMs, warmMs } = CFG.micro
  const out = { calibration: calibrateErrors() }
  log(`  calibration: new Error() ${fmtNs(out.calibration.newErrorNs)}, with Error.stackTraceLimit = 0 ${fmtNs(out.calibration.newErrorNoStackNs)}`)
  for (const sc of SCENARIOS) {
    stage = `micro/${sc.id}`
    const res = out[sc.id] = {}
    const targets = []
    for (const lib of LIBRARIES) {
      try {
        const tg = makeTarget(libs, lib, sc.id)
        if (!tg) { res[lib] = { skipped: libs.breakwaterError ? 'breakwater not loadable' : 'unavailable' }; continue }
        tg.loop = compileLoop(tg)
        tg.samples = []
        targets.push(tg)
      } catch (err) {
        res[lib] = { error: `setup: ${firstLine(err)}` }
      }
    }
    // warm-up (time-bounded)
    for (const tg of targets) {
      try {
        await watchdog(tg.ensure(), 10000, 'ensure')
        await watchdog(tg.loop(hr() + BigInt(warmMs * 1e6)), warmMs + 10000, 'warm-up')
        tg.check((await watchdog(tg.loop(0n), 10000, 'check')).last)
      } catch (err) {
        tg.error = firstLine(err)
      }
    }
    // timed runs, interleaved: every round runs every library once, rotating the order
    const active = () => targets.filter((tg) => !tg.error)
    for (let r = 0; r < rounds; r++) {
      const list = active()
      const order = list.map((_, i) => list[(i + r) % list.length])
      for (const tg of order) {
        try {
          await watchdog(tg.ensure(), 10000, 'ensure')
          await tick()
          gc()
          const t0 = hr()
          const { n, last } = await watchdog(tg.loop(t0 + BigInt(runMs * 1e6)), runMs + 10000, 'timed run')
          const dt = Number(hr() - t0)
          tg.check(last)
          tg.samples.push(dt / n)
        } catch (err) {
          tg.error = firstLine(err)
        }
      }
    }
    const base = targets.find((tg) => tg.lib === 'baseline')
    const baseNs = base && !base.error ? median(base.samples) : NaN
    for (const tg of targets) {
      try { tg.teardown() } catch (err) { tg.error = tg.error || `teardown: ${firstLine(err)}` }
      if (tg.error) { res[tg.lib] = { error: tg.error }; continue }
      const ns = median(tg.samples)
      res[tg.lib] = {
        nsPerCall: ns,
        overheadNs: tg.lib === 'baseline' ? 0 : ns - baseNs,
        min: Math.min(...tg.samples),
        max: Math.max(...tg.samples),
        samples: tg.samples
      }
    }
    log(`  ${sc.label}: ` + LIBRARIES.map((l) => `${l} ${fmtNs(res[l]?.nsPerCall)}`).join(', '))
  }
  return out
}

// ---------------------------------------------------------------------------------------
// Child processes (memory, sustained, stats)

function runChild (args, { exposeGc = false, timeoutMs = 120000, script = 'child.js' } = {}) {
  const nodeArgs = [...(exposeGc ? ['--expose-gc'] : []), path.join(__dirname, script), ...args.map(String)]
  const r = spawnSync(process.execPath, nodeArgs, { cwd: ROOT, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 2 ** 20 })
  const line = (r.stdout || '').split('\n').reverse().find((l) => l.startsWith('RESULT '))
  if (r.error) return { error: firstLine(r.error) }
  if (!line) {
    const why = r.signal ? `killed by ${r.signal}` : `exit code ${r.status}`
    return { error: `child ${args[0]} ${args[1]}: ${why}; stderr: ${sanitize((r.stderr || '').trim().split('\n').slice(-3).join(' | ')).slice(0, 400)}` }
  }
  const res = JSON.parse(line.slice(7))
  if (r.status !== 0 && !res.error) res.error = `exit code ${r.status}`
  return res
}

function runMemory (libs) {
  stage = 'memory'
  const out = {}
  for (const lib of ['breakwater', 'breakwater-defaults', 'cockatiel', 'cockatiel-consecutive', 'opossum']) {
    if (lib.startsWith('breakwater') && !libs.breakwater) { out[lib] = { skipped: 'breakwater not loadable' }; continue }
    out[lib] = runChild(['memory', lib, CFG.memory.count], { exposeGc: true })
    const p = out[lib].perBreaker
    log(`  memory ${lib}: ` + (p ? `heap ${fmtBytes(p.heapUsed)}/breaker, rss ${fmtBytes(p.rss)}/breaker` : out[lib].error))
  }
  return out
}

function runScale (libs) {
  stage = 'scale'
  if (!libs.breakwater) return { skipped: 'breakwater not loadable' }
  const { circuits, reps } = CFG.scale
  const r = runChild([circuits, reps], { exposeGc: true, script: 'scale.js', timeoutMs: 600000 })
  if (!r.error) {
    r.bwNsPerLine = r.bwMedianMs * 1e6 / r.lines
    r.pcNsPerLine = r.pcMedianMs * 1e6 / r.pcLines
  }
  log(`  scale, ${circuits} circuits: ` + (r.error || `toPrometheus() ${r.bwMedianMs.toFixed(0)} ms for ${r.lines} lines (${r.bwNsPerLine.toFixed(0)} ns/line; longest ${r.bwMaxMs.toFixed(0)} ms), prom-client ${r.pcMedianMs.toFixed(0)} ms (${r.pcNsPerLine.toFixed(0)} ns/line)`))
  return r
}

function runSustained (libs) {
  stage = 'sustained'
  const out = {}
  for (const lib of ['breakwater', 'opossum']) {
    if (lib === 'breakwater' && !libs.breakwater) { out[lib] = { skipped: 'breakwater not loadable' }; continue }
    const { seconds, window } = CFG.sustained[lib]
    const r = out[lib] = runChild(['sustained', lib, seconds, window], { timeoutMs: (seconds + 60) * 1000 })
    if (r.error) { log(`  sustained ${lib}: ${r.error}`); continue }
    r.nsRatio = r.last.nsPerCall / r.first.nsPerCall
    r.rssGrowthMB = (r.last.rssEnd - r.first.rssEnd) / 2 ** 20
    r.pass = r.nsRatio <= GOALS.sustainedNs && r.rssGrowthMB <= GOALS.sustainedRssMB
    log(`  sustained ${lib}: first ${fmtNs(r.first.nsPerCall)} → last ${fmtNs(r.last.nsPerCall)}, ` +
      `RSS ${fmtMB(r.first.rssEnd)} → ${fmtMB(r.last.rssEnd)}`)
  }
  return out
}

function runStats (libs) {
  stage = 'stats'
  if (!libs.breakwater) return { skipped: 'breakwater not loadable' }
  if (typeof libs.breakwater.getAllCircuitBreakerStats !== 'function') return { error: 'getAllCircuitBreakerStats is not exported' }
  const r = runChild(['stats', 'breakwater', CFG.stats.circuits, CFG.stats.reps, CFG.stats.warmMs], { exposeGc: true })
  if (!r.error) {
    r.medianMs = median(r.timesMs)
    r.p90Ms = quantile(r.timesMs, 0.9)
  }
  log(`  getAllCircuitBreakerStats over ${CFG.stats.circuits}: ` + (r.error ||
    `${r.medianMs.toFixed(3)} ms (median of ${r.timesMs.length} after ${r.warmMs} ms of warm-up; p90 ${r.p90Ms.toFixed(3)} ms; first read of the process ${r.firstMs.toFixed(3)} ms)`))
  return r
}

// ---------------------------------------------------------------------------------------
// Threads: N worker_threads on one shared circuit, each runs for a fixed time budget

async function runThreadsOnce (lib, nThreads, name) {
  const barrier = new SharedArrayBuffer(8)
  const flags = new Int32Array(barrier)
  const { budgetMs, warmMs } = CFG.threads
  const workers = []
  const results = []
  const done = []
  for (let i = 0; i < nThreads; i++) {
    const w = new Worker(path.join(__dirname, 'thread-worker.js'), { workerData: { lib, name, budgetMs, warmMs, barrier } })
    workers.push(w)
    done.push(new Promise((resolve) => {
      w.once('message', (m) => { results[i] = m; resolve() })
      w.once('error', (err) => { results[i] = { error: firstLine(err) }; resolve() })
      w.once('exit', (code) => { if (!results[i]) results[i] = { error: `worker exited with code ${code}` }; resolve() })
    }))
  }
  // barrier: wait until every worker is warmed up (or failed), then release them together
  const deadline = Date.now() + 60000
  while (Atomics.load(flags, 0) < nThreads && results.filter(Boolean).length === 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  Atomics.store(flags, 1, 1)
  Atomics.notify(flags, 1)
  try {
    await watchdog(Promise.all(done), budgetMs + warmMs + 30000, `${nThreads} thread(s)`)
  } catch (err) {
    for (let i = 0; i < nThreads; i++) if (!results[i]) results[i] = { error: firstLine(err) }
  }
  await Promise.all(workers.map((w) => w.terminate()))
  const err = results.find((r) => r && r.error)
  if (err) return { error: err.error }
  const throughput = results.reduce((a, r) => a + r.calls / (r.elapsedNs / 1e9), 0)
  return { threads: nThreads, throughput, perThread: results }
}

async function runThreads (libs) {
  stage = 'threads'
  const out = { breakwater: { 1: [], 4: [] }, baseline: { 1: [], 4: [] } }
  const problems = []
  const libsToRun = libs.breakwater ? ['breakwater', 'baseline'] : ['baseline']
  if (!libs.breakwater) out.breakwater = { skipped: 'breakwater not loadable' }
  for (let rep = 0; rep < CFG.threads.reps; rep++) {
    for (const lib of libsToRun) {
      for (const n of rep % 2 ? [4, 1] : [1, 4]) {
        const name = uniqueName('bench-threads')
        const r = await runThreadsOnce(lib, n, name)
        if (lib === 'breakwater' && !r.error) {
          // the shared circuit must have counted every call of every thread
          try {
            const b = new libs.breakwater.CircuitBreaker({ ...BW_BASE, name })
            const st = b.getStats()
            const expected = r.perThread.reduce((a, p) => a + p.calls + p.warmCalls, 0)
            r.circuitSuccessCount = st.successCount
            r.expectedSuccessCount = expected
            if (st.successCount !== expected) {
              problems.push(`${n} threads on one circuit: successCount ${st.successCount}, but the threads completed ${expected} calls`)
            }
            b.dispose()
          } catch (err) {
            problems.push(`attaching to the shared circuit from the main thread failed: ${firstLine(err)}`)
          }
        }
        if (r.error) { out[lib][n].push({ error: r.error }); problems.push(`${lib} ${n} threads: ${r.error}`) } else out[lib][n].push(r)
      }
    }
  }
  const summary = {}
  for (const lib of libsToRun) {
    const t1 = median(out[lib][1].filter((r) => !r.error).map((r) => r.throughput))
    const t4 = median(out[lib][4].filter((r) => !r.error).map((r) => r.throughput))
    summary[lib] = { throughput1: t1, throughput4: t4, ratio: t4 / t1 }
    log(`  threads ${lib}: 1 → ${fmtRate(t1)}, 4 → ${fmtRate(t4)} (×${(t4 / t1).toFixed(2)})`)
  }
  return { runs: out, summary, problems: [...new Set(problems)] }
}

// ---------------------------------------------------------------------------------------
// Cold start: a whole `node -e "require(...)"` process

function runCold (libs) {
  stage = 'cold'
  const cmds = {
    'node only': '',
    breakwater: `require(${JSON.stringify(ROOT)})`,
    cockatiel: "require('cockatiel')",
    opossum: "require('opossum')"
  }
  if (!libs.breakwater) delete cmds.breakwater
  const names = Object.keys(cmds)
  const times = Object.fromEntries(names.map((n) => [n, []]))
  const errors = {}
  // one unmeasured spawn each (page cache)
  for (const n of names) spawnSync(process.execPath, ['-e', cmds[n]], { cwd: ROOT })
  for (let r = 0; r < CFG.cold.rounds; r++) {
    for (let i = 0; i < names.length; i++) {
      const n = names[(i + r) % names.length]
      const t0 = hr()
      const p = spawnSync(process.execPath, ['-e', cmds[n]], { cwd: ROOT, encoding: 'utf8' })
      const ms = Number(hr() - t0) / 1e6
      if (p.status !== 0) errors[n] = sanitize((p.stderr || '').trim().split('\n').slice(-2).join(' | ')).slice(0, 300) || `exit ${p.status}`
      else if (p.stderr && p.stderr.trim()) errors[n] = `stderr: ${sanitize(p.stderr.trim().split('\n')[0]).slice(0, 200)}`
      times[n].push(ms)
    }
  }
  const medians = Object.fromEntries(names.map((n) => [n, median(times[n])]))
  log('  cold start (median ms): ' + names.map((n) => `${n} ${medians[n].toFixed(1)}`).join(', '))
  if (!libs.breakwater) return { medians, times, errors, skipped: 'breakwater not loadable' }
  return { medians, times, errors }
}

// ---------------------------------------------------------------------------------------
// Goals

function ratioGoal ({ id, label, value, ref, alt, limit, unit, refLabel }) {
  const ratio = Number.isFinite(value) && Number.isFinite(ref) && ref > 0 ? value / ref : NaN
  const altRatio = Number.isFinite(value) && Number.isFinite(alt) && alt > 0 ? value / alt : NaN
  const status = (r) => !Number.isFinite(value) ? 'SKIP' : Number.isFinite(r) ? (r <= limit ? 'PASS' : 'MISS') : 'n/a'
  return { id, label, value, ref, refLabel, ratio, limit, unit, result: status(ratio), altRatio, altResult: Number.isFinite(alt) ? status(altRatio) : undefined }
}

function computeGoals (R) {
  const g = []
  const m = R.micro || {}
  const ns = (sc, lib) => m[sc]?.[lib]?.nsPerCall
  const oh = (sc, lib) => m[sc]?.[lib]?.overheadNs
  if (R.micro) {
    g.push(ratioGoal({ id: 'success-overhead', label: 'success, no timeout: overhead', value: oh('success', 'breakwater'), ref: oh('success', 'cockatiel'), alt: oh('success', 'cockatiel-consecutive'), refLabel: "cockatiel's overhead", limit: GOALS.successOverhead, unit: 'ns' }))
    g.push(ratioGoal({ id: 'redis-overhead', label: 'success, with redisStore: overhead', value: oh('success', 'breakwater-redis'), ref: oh('success', 'breakwater'), refLabel: "breakwater's overhead without a store", limit: GOALS.redisOverhead, unit: 'ns' }))
    g.push(ratioGoal({ id: 'timeout-overhead', label: 'success, 30 s timeout: overhead', value: oh('timeout', 'breakwater'), ref: oh('success', 'breakwater'), refLabel: "breakwater's no-timeout overhead", limit: GOALS.timeoutOverhead, unit: 'ns' }))
    g.push(ratioGoal({ id: 'failure-overhead', label: 'failure, counted: overhead', value: oh('failure', 'breakwater'), ref: oh('failure', 'cockatiel'), alt: oh('failure', 'cockatiel-consecutive'), refLabel: "cockatiel's overhead", limit: GOALS.failureOverhead, unit: 'ns' }))
    g.push(ratioGoal({ id: 'open-reject', label: 'open, rejected: time per call', value: ns('open', 'breakwater'), ref: ns('open', 'cockatiel'), alt: ns('open', 'cockatiel-consecutive'), refLabel: "cockatiel's rejection", limit: GOALS.openReject, unit: 'ns' }))
    g.push(ratioGoal({ id: 'open-fallback', label: 'open, fallback `async (err) => v`: time per call', value: ns('fallback', 'breakwater'), ref: ns('open', 'cockatiel'), alt: ns('open', 'cockatiel-consecutive'), refLabel: "cockatiel's rejection", limit: GOALS.openFallback, unit: 'ns' }))
  }
  if (R.memory) {
    const per = (lib, k) => R.memory[lib]?.perBreaker?.[k]
    g.push(ratioGoal({ id: 'memory-heap', label: `heap per breaker (${CFG.memory.count} breakers)`, value: per('breakwater', 'heapUsed'), ref: per('cockatiel', 'heapUsed'), alt: per('cockatiel-consecutive', 'heapUsed'), refLabel: "cockatiel's", limit: GOALS.memory, unit: 'B' }))
    g.push(ratioGoal({ id: 'memory-rss', label: `RSS per breaker (${CFG.memory.count} breakers; includes native memory — supplementary)`, value: per('breakwater', 'rss'), ref: per('cockatiel', 'rss'), alt: per('cockatiel-consecutive', 'rss'), refLabel: "cockatiel's", limit: GOALS.memory, unit: 'B' }))
  }
  if (R.sustained) {
    const s = R.sustained.breakwater
    const ok = s && !s.error && !s.skipped
    g.push({
      id: 'sustained',
      label: `sustained ${ok ? Math.round(s.seconds) : CFG.sustained.breakwater.seconds} s success path: first vs last ${CFG.sustained.breakwater.window} s`,
      value: ok ? s.last.nsPerCall : NaN,
      ref: ok ? s.first.nsPerCall : NaN,
      refLabel: 'first window',
      ratio: ok ? s.nsRatio : NaN,
      limit: GOALS.sustainedNs,
      unit: 'ns',
      extra: ok ? `RSS ${fmtMB(s.first.rssEnd)} → ${fmtMB(s.last.rssEnd)} (${fmtSigned(s.rssGrowthMB)} MB; limit +${GOALS.sustainedRssMB} MB)` : '',
      result: ok ? (s.pass ? 'PASS' : 'MISS') : 'SKIP'
    })
  }
  if (R.threads) {
    const t = R.threads.summary?.breakwater
    const ok = t && Number.isFinite(t.ratio)
    g.push({
      id: 'threads',
      label: '4 worker_threads on one circuit vs 1: aggregate throughput',
      value: ok ? t.throughput4 : NaN,
      ref: ok ? t.throughput1 : NaN,
      refLabel: '1 thread',
      ratio: ok ? t.ratio : NaN,
      limit: GOALS.threads,
      unit: 'calls/s',
      cmp: '≥',
      extra: R.threads.summary?.baseline ? `bare \`await fn()\` scales ×${R.threads.summary.baseline.ratio.toFixed(2)} on this machine` : '',
      result: ok ? (t.ratio >= GOALS.threads ? 'PASS' : 'MISS') : 'SKIP'
    })
  }
  if (R.cold) {
    g.push(ratioGoal({ id: 'cold-start', label: 'cold start `node -e "require(…)"`', value: R.cold.medians?.breakwater, ref: R.cold.medians?.cockatiel, refLabel: "cockatiel's", limit: GOALS.coldStart, unit: 'ms' }))
  }
  if (R.stats) {
    const v = R.stats.medianMs
    g.push({ id: 'stats', label: `getAllCircuitBreakerStats() over ${CFG.stats.circuits} circuits`, value: v, ref: NaN, refLabel: '', ratio: NaN, limit: GOALS.statsMs, unit: 'ms', cmp: 'abs', result: Number.isFinite(v) ? (v <= GOALS.statsMs ? 'PASS' : 'MISS') : 'SKIP' })
  }
  return g
}

/** Issue 14's goals: the user-shaped loop, default options, footprint, scale. */
function computeGoals14 (R) {
  const g = []
  const U = R.user
  if (U) {
    const oh = (p, lib) => U[p]?.[lib]?.overheadNs
    const ns = (p, lib) => U[p]?.[lib]?.nsPerCall
    g.push(ratioGoal({ id: 'user-success', label: 'success overhead', value: oh('success', 'breakwater-nt'), ref: oh('success', 'cockatiel-consecutive'), alt: oh('success', 'cockatiel'), refLabel: 'cockatiel ConsecutiveBreaker', limit: GOALS14.success, unit: 'ns' }))
    g.push(ratioGoal({ id: 'user-failure', label: 'failure overhead (`new Error` per call)', value: oh('failure', 'breakwater-nt'), ref: oh('failure', 'cockatiel-consecutive'), alt: oh('failure', 'cockatiel'), refLabel: 'cockatiel ConsecutiveBreaker', limit: GOALS14.failure, unit: 'ns' }))
    g.push(ratioGoal({ id: 'user-defaults-own', label: 'default options (30 s timeout) overhead', value: oh('defaults', 'breakwater'), ref: oh('defaults', 'breakwater-nt'), refLabel: 'own, `timeout: 0`', limit: GOALS14.defaultsVsOwn, unit: 'ns' }))
    g.push(ratioGoal({ id: 'user-defaults-opossum', label: 'default options overhead', value: oh('defaults', 'breakwater'), ref: oh('defaults', 'opossum'), refLabel: 'opossum, `timeout: 30000`', limit: GOALS14.defaultsVsOpossum, unit: 'ns' }))
    g.push(ratioGoal({ id: 'user-open', label: 'open, rejected: time per call', value: ns('open', 'breakwater'), ref: ns('open', 'cockatiel-consecutive'), alt: ns('open', 'cockatiel'), refLabel: 'cockatiel ConsecutiveBreaker', limit: GOALS14.openReject, unit: 'ns' }))
    g.push(ratioGoal({ id: 'user-fallback', label: 'open, fallback: time per call', value: ns('fallback', 'breakwater'), ref: ns('open', 'cockatiel-consecutive'), alt: ns('open', 'cockatiel'), refLabel: "cockatiel ConsecutiveBreaker's rejection", limit: GOALS14.openFallback, unit: 'ns' }))
  }
  if (R.memory) {
    const per = (lib, k) => R.memory[lib]?.perBreakerCreated?.[k]
    g.push(ratioGoal({ id: 'user-heap', label: `JS heap per default breaker (${CFG.memory.count} created)`, value: per('breakwater-defaults', 'heapUsed'), ref: per('cockatiel-consecutive', 'heapUsed'), alt: per('cockatiel', 'heapUsed'), refLabel: "cockatiel ConsecutiveBreaker's policy", limit: GOALS14.heap, unit: 'B' }))
    const rss = R.memory['breakwater-defaults']?.perBreaker?.rss
    const heap = R.memory['breakwater-defaults']?.perBreaker?.heapUsed
    g.push({
      id: 'user-process', label: `whole process (RSS) per default circuit, one call each (${CFG.memory.count})`, value: rss, ref: NaN, ratio: NaN,
      extra: Number.isFinite(rss) ? `JS heap ${fmtBytes(heap)}, the rest ${fmtBytes(rss - heap)}` : '',
      limit: GOALS14.processBytes, unit: 'B', cmp: 'abs', result: Number.isFinite(rss) ? (rss <= GOALS14.processBytes ? 'PASS' : 'MISS') : 'SKIP'
    })
  }
  if (R.scale) {
    const s = R.scale
    g.push(ratioGoal({ id: 'user-prometheus', label: `toPrometheus(), ${CFG.scale.circuits} default circuits with traffic, per exposed line`, value: s.bwNsPerLine, ref: s.pcNsPerLine, refLabel: "prom-client's registry.metrics()", limit: GOALS14.prometheus, unit: 'ns' }))
    if (Number.isFinite(s.bwMaxMs)) g[g.length - 1].extra = `${s.lines.toLocaleString('en-US')} lines in ${s.bwMedianMs.toFixed(0)} ms (event loop blocked for as long; longest ${s.bwMaxMs.toFixed(0)} ms)`
  }
  return g
}

// ---------------------------------------------------------------------------------------
// Formatting

function fmtNs (v) { return Number.isFinite(v) ? (v >= 1000 ? `${Math.round(v).toLocaleString('en-US')}` : v.toFixed(v < 100 ? 1 : 0)) + ' ns' : '—' }
function fmtNum (v, d = 0) { return Number.isFinite(v) ? v.toFixed(d) : '—' }
function fmtSigned (v, d = 1) { return Number.isFinite(v) ? (v >= 0 ? '+' : '') + v.toFixed(d) : '—' }
function fmtBytes (v) { return Number.isFinite(v) ? `${Math.round(v).toLocaleString('en-US')} B` : '—' }
function fmtMB (v) { return Number.isFinite(v) ? `${(v / 2 ** 20).toFixed(1)} MB` : '—' }
function fmtRate (v) { return Number.isFinite(v) ? `${(v / 1e6).toFixed(2)} M calls/s` : '—' }
function fmtVal (v, unit) {
  if (unit === 'ns') return fmtNs(v)
  if (unit === 'B') return fmtBytes(v)
  if (unit === 'ms') return Number.isFinite(v) ? `${v.toFixed(v < 10 ? 3 : 1)} ms` : '—'
  if (unit === 'calls/s') return fmtRate(v)
  if (unit === 'MiB') return Number.isFinite(v) ? `${v.toFixed(2)} MiB` : '—'
  return String(v)
}

function microTable (R, libs) {
  const cols = LIBRARIES
  const lines = []
  lines.push('| path | ' + cols.map((c) => LIB_LABEL[c]).join(' | ') + ' |')
  lines.push('|---|' + cols.map(() => '---:').join('|') + '|')
  for (const sc of SCENARIOS) {
    const row = R.micro[sc.id] || {}
    const cells = cols.map((c) => {
      const r = row[c]
      if (!r) return '—'
      if (r.skipped) return 'skipped'
      if (r.error) return 'error¹'
      if (c === 'baseline') return fmtNs(r.nsPerCall)
      return `${fmtNs(r.nsPerCall)} (${fmtSigned(r.overheadNs, 0)})`
    })
    lines.push(`| ${sc.label} | ${cells.join(' | ')} |`)
  }
  return lines.join('\n')
}

function goalsTable (goals, altHeader = 'vs cockatiel ConsecutiveBreaker') {
  const lines = []
  lines.push(`| goal | breakwater | reference | ratio | target | result | ${altHeader} |`)
  lines.push('|---|---:|---:|---:|---:|:---:|:---|')
  for (const g of goals) {
    const target = g.cmp === 'abs' ? `≤ ${fmtVal(g.limit, g.unit)}` : g.cmp === '≥' ? `≥ ${g.limit}` : `≤ ${g.limit}`
    const ref = Number.isFinite(g.ref) ? `${fmtVal(g.ref, g.unit)} (${g.refLabel})` : '—'
    const ratio = Number.isFinite(g.ratio) ? g.ratio.toFixed(2) : '—'
    const alt = g.altResult ? `${Number.isFinite(g.altRatio) ? g.altRatio.toFixed(2) : '—'} ${g.altResult}` : ''
    const label = g.extra ? `${g.label}; ${g.extra}` : g.label
    lines.push(`| ${label} | ${fmtVal(g.value, g.unit)} | ${ref} | ${ratio} | ${target} | **${g.result}** | ${alt} |`)
  }
  return lines.join('\n')
}

function detailsText (R) {
  const lines = []
  if (R.memory) {
    lines.push(`Memory, ${CFG.memory.count} breakers each (one call made on each), per breaker after gc:`)
    lines.push('')
    lines.push('| library | heapUsed | external | RSS |')
    lines.push('|---|---:|---:|---:|')
    for (const [lib, r] of Object.entries(R.memory)) {
      const p = r.perBreaker
      lines.push(`| ${LIB_LABEL[lib]} | ${p ? fmtBytes(p.heapUsed) : r.skipped || 'error¹'} | ${p ? fmtBytes(p.external) : ''} | ${p ? fmtBytes(p.rss) : ''} |`)
    }
    lines.push('')
  }
  if (R.sustained) {
    lines.push('Sustained success path (one process per library, yields to the event loop every 5 ms):')
    lines.push('')
    lines.push('| library | seconds | ns/call first → last window | RSS first → last window | result |')
    lines.push('|---|---:|---:|---:|:---:|')
    for (const [lib, s] of Object.entries(R.sustained)) {
      if (s.error || s.skipped) { lines.push(`| ${LIB_LABEL[lib]} | | ${s.skipped || 'error¹'} | | |`); continue }
      lines.push(`| ${LIB_LABEL[lib]} | ${Math.round(s.seconds)} (windows of ${s.windowSeconds} s) | ${fmtNs(s.first.nsPerCall)} → ${fmtNs(s.last.nsPerCall)} (×${s.nsRatio.toFixed(2)}) | ${fmtMB(s.first.rssEnd)} → ${fmtMB(s.last.rssEnd)} (${fmtSigned(s.rssGrowthMB)} MB) | ${s.pass ? 'PASS' : 'MISS'} |`)
    }
    lines.push('')
  }
  if (R.threads?.summary) {
    const s = R.threads.summary
    lines.push('Threads (aggregate success-path throughput, median of ' + CFG.threads.reps + ' runs of ' + CFG.threads.budgetMs + ' ms):')
    lines.push('')
    lines.push('| | 1 thread | 4 threads | ratio |')
    lines.push('|---|---:|---:|---:|')
    for (const [lib, t] of Object.entries(s)) lines.push(`| ${lib === 'baseline' ? 'bare `await fn()` (machine ceiling)' : 'breakwater, one shared circuit'} | ${fmtRate(t.throughput1)} | ${fmtRate(t.throughput4)} | ×${fmtNum(t.ratio, 2)} |`)
    lines.push('')
  }
  if (Number.isFinite(R.scale?.bwMedianMs)) {
    const s = R.scale
    lines.push(`Scale, ${s.circuits} default circuits with traffic, median of ${s.reps} interleaved runs: toPrometheus() ${s.bwMedianMs.toFixed(0)} ms for ${s.lines} sample lines ` +
      `(${s.bwNsPerLine.toFixed(0)} ns/line, first call of the process ${s.firstMs.toFixed(0)} ms), prom-client \`registry.metrics()\` ${s.pcMedianMs.toFixed(0)} ms for ${s.pcLines} (${s.pcNsPerLine.toFixed(0)} ns/line).`)
    lines.push('')
  }
  if (R.cold?.medians) {
    lines.push(`Cold start, median of ${CFG.cold.rounds} spawns: ` + Object.entries(R.cold.medians).map(([k, v]) => `${k} ${v.toFixed(1)} ms`).join(', ') + '.')
    lines.push('')
  }
  const notes = collectProblems(R)
  if (notes.length) {
    lines.push('¹ Errors and problems seen:')
    lines.push('')
    for (const n of notes) lines.push(`- ${n}`)
    lines.push('')
  }
  return lines.join('\n')
}

function collectProblems (R) {
  const notes = []
  if (R.breakwaterError) notes.push(`breakwater could not be loaded: ${R.breakwaterError}`)
  for (const [sc, row] of Object.entries(R.micro || {})) {
    if (sc === 'calibration') continue
    for (const [lib, r] of Object.entries(row)) if (r.error) notes.push(`${sc} / ${lib}: ${r.error}`)
  }
  for (const [lib, r] of Object.entries(R.memory || {})) if (r.error) notes.push(`memory / ${lib}: ${r.error}`)
  notes.push(...userProblems(R.user))
  if (R.scale?.error) notes.push(`scale: ${R.scale.error}`)
  if (R.coldStart?.error) notes.push(`cold start: ${R.coldStart.error}`)
  for (const [k, v] of Object.entries(R.coldStart?.errors || {})) notes.push(`cold start / ${k}: ${v}`)
  for (const p of R.scale?.problems || []) notes.push(`scale: ${p}`)
  for (const [lib, r] of Object.entries(R.sustained || {})) if (r.error) notes.push(`sustained / ${lib}: ${r.error}`)
  for (const p of R.threads?.problems || []) notes.push(`threads: ${p}`)
  for (const [k, v] of Object.entries(R.cold?.errors || {})) notes.push(`cold start / ${k}: ${v}`)
  if (R.stats?.error) notes.push(`stats: ${R.stats.error}`)
  for (const p of R.stats?.problems || []) notes.push(`stats: ${p}`)
  for (const p of R.exitProblems || []) notes.push(p)
  return notes
}

function updateReadme (text) {
  const file = path.join(__dirname, 'README.md')
  let readme
  try { readme = fs.readFileSync(file, 'utf8') } catch { return }
  const start = '<!-- results:start -->'
  const end = '<!-- results:end -->'
  const i = readme.indexOf(start)
  const j = readme.indexOf(end)
  if (i < 0 || j < i) return
  fs.writeFileSync(file, readme.slice(0, i + start.length) + '\n' + text + '\n' + readme.slice(j))
}

// ---------------------------------------------------------------------------------------

async function main () {
  const t0 = Date.now()
  const libs = await loadLibs()
  const R = {
    mode: QUICK ? 'quick' : 'full',
    date: new Date().toISOString(),
    machine: machine(),
    versions: {
      breakwater: libs.breakwater ? require(path.join(ROOT, 'package.json')).version : null,
      cockatiel: require('cockatiel/package.json').version,
      opossum: require('opossum/package.json').version
    },
    config: CFG,
    goalsConfig: GOALS,
    breakwaterError: libs.breakwaterError,
    loadavgStart: os.loadavg()
  }
  const mc = R.machine
  log(`breakwater bench (${R.mode}) — ${mc.cpu}, ${mc.nproc} cpus, node ${mc.node}`)
  if (R.loadavgStart[0] > 0.5) {
    log(`  note: load average is ${R.loadavgStart.map((x) => x.toFixed(2)).join(' ')} — other processes are busy, expect noise`)
  }
  if (!libs.breakwater) {
    log(`\n  !! breakwater skipped: require('..') failed: ${libs.breakwaterError}`)
    log('  !! (build it with `npm run build`); measuring cockatiel, opossum and the baseline only.\n')
  }
  if (want('micro')) {
    log('hot paths…')
    const redis = await startBenchRedis(libs)
    const moto = await startBenchMoto(libs)
    try {
      R.micro = await runMicro(libs)
    } finally {
      if (redis) {
        libs.redisStore.close()
        await redis.stop()
      }
      if (moto) {
        moto.client.destroy()
        await moto.stop()
      }
    }
  }
  if (want('user')) {
    log('user-shaped loop…')
    stage = 'user'
    R.user = await runUserLoop(libs, CFG.user, { gc, median, log, fmtNs, hr })
  }
  if (want('memory')) { log('memory…'); R.memory = runMemory(libs) }
  if (want('sustained')) { log('sustained…'); R.sustained = runSustained(libs) }
  if (want('threads')) { log('threads…'); R.threads = await runThreads(libs) }
  if (want('cold')) { log('cold start…'); R.cold = runCold(libs) }
  if (want('cold-start')) {
    log('cold start, installed from packed tarballs…')
    stage = 'cold-start'
    R.coldStart = await runColdStart(CFG.coldStart, { median, log })
  }
  if (want('stats')) { log('stats…'); R.stats = runStats(libs) }
  if (want('scale')) { log('scale…'); R.scale = runScale(libs) }
  stage = 'report'
  R.goals = computeGoals(R)
  R.goals14 = computeGoals14(R)
  R.goals16 = coldGoals(R.coldStart, ratioGoal)
  R.durationSeconds = (Date.now() - t0) / 1000
  R.loadavgEnd = os.loadavg()

  const parts = []
  parts.push(`Run: ${R.mode}, ${R.date.slice(0, 10)}; ${mc.cpu}, ${mc.nproc} cpus, Node ${mc.node}; ` +
    `breakwater ${R.versions.breakwater || '(not built)'}, cockatiel ${R.versions.cockatiel}, opossum ${R.versions.opossum}; ` +
    `load average at start ${R.loadavgStart[0].toFixed(2)}.`)
  parts.push('')
  if (R.micro) {
    parts.push('ns per call (overhead vs baseline in parentheses), median of ' + CFG.micro.rounds + ' interleaved runs:')
    parts.push('')
    parts.push(microTable(R, libs))
    parts.push('')
    parts.push('Baselines: `await fn()` with the same action — resolved for the success, timeout and fallback rows, ' +
      'a pre-created rejection (caught) for the failure and open-rejected rows. ' +
      `For scale: \`new Error()\` costs ${fmtNs(R.micro.calibration.newErrorNs)} on this machine ` +
      `(${fmtNs(R.micro.calibration.newErrorNoStackNs)} with \`Error.stackTraceLimit = 0\`).`)
    parts.push('')
  }
  if (R.goals.length) {
    parts.push('Goals (issue 3):')
    parts.push('')
    parts.push(goalsTable(R.goals))
    parts.push('')
  }
  const section = (title, body) => parts.push(title, '', body, '')
  if (R.user) {
    section('The user-shaped loop (issue 14): `for (…) { try { s += await call() } catch { c++ } }` in an async function, ' +
      'a turn of the event loop every 1,024 calls, a fresh breaker per run, failures `async () => { throw new Error(\'boom\') }`; ' +
      'ns per call (overhead vs baseline), median of ' + CFG.user.rounds + ' interleaved runs:', userTable(R.user, fmtNs, fmtSigned))
  }
  if (R.goals14.length) section('Goals (issue 14):', goalsTable(R.goals14, 'vs cockatiel SamplingBreaker'))
  if (R.coldStart?.figures) {
    section('Cold start (issue 16), packed tarballs installed into an empty app, child processes interleaved, median of ' + CFG.coldStart.rounds + ' each:', coldTable(R.coldStart))
  }
  if (R.goals16.length) section('Goals (issue 16):', goalsTable(R.goals16, 'vs cockatiel'))
  parts.push(detailsText(R))
  const text = parts.join('\n').trimEnd()
  console.log('\n' + text + '\n')
  log(`done in ${R.durationSeconds.toFixed(0)} s`)

  const file = path.join(__dirname, QUICK ? 'results-quick.json' : 'results.json')
  if (!ONLY) {
    fs.writeFileSync(file, JSON.stringify(R, (k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n')
    log(`wrote benchmark/${path.basename(file)}`)
  }
  if (UPDATE_README) { updateReadme(text); log('updated the results section of benchmark/README.md') }
  finished = true

  // A circuit breaker must not keep the process alive: if something still holds the event
  // loop 2 s from now (timers, handles), say so and exit anyway.
  const guard = setTimeout(() => {
    const handles = process._getActiveHandles().filter((h) => h !== guard).map((h) => h.constructor?.name || typeof h)
    console.error(`bench: the process did not exit by itself 2 s after finishing; active handles: ${handles.join(', ') || 'none'}`)
    process.exit(process.exitCode || 0)
  }, 2000)
  guard.unref()
}

main().catch((err) => {
  console.error(`bench failed during "${stage}":`, sanitize(err && err.stack ? err.stack : err))
  finished = true
  process.exitCode = 1
})
