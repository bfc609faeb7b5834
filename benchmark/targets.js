'use strict'
// Library loading and the per-library configurations shared by bench.js, child.js
// (child processes) and thread-worker.js (worker_threads).

const path = require('node:path')
const os = require('node:os')

const ROOT = path.resolve(__dirname, '..')

/** Strip this machine's paths out of anything that may end up in a file or a table. */
function sanitize (text) {
  let s = String(text)
  const replace = (needle, by) => { if (needle && needle.length > 1) s = s.split(needle).join(by) }
  replace(ROOT, '<repo>')
  replace(process.execPath, 'node')
  replace(os.homedir(), '~')
  replace(os.tmpdir(), '<tmp>')
  // any other absolute path
  s = s.replace(/(?:\/[\w.@+~-]+){2,}\/?/g, '<path>')
  return s
}

function firstLine (err) {
  const msg = err && (err.message || String(err))
  return sanitize(String(msg).split('\n')[0]).slice(0, 300)
}

/**
 * Load the three libraries. breakwater is optional: if `require('..')` throws (not built
 * yet, or broken) we keep going with the others and report why.
 */
async function loadLibs () {
  const libs = { breakwater: null, breakwaterError: null, cockatiel: null, opossum: null }
  try {
    if (process.env.BENCH_SKIP_BREAKWATER) throw new Error('skipped (BENCH_SKIP_BREAKWATER is set)')
    libs.breakwater = require(ROOT)
    if (typeof libs.breakwater.CircuitBreaker !== 'function') {
      throw new Error('require(repo) did not export a CircuitBreaker class')
    }
  } catch (err) {
    libs.breakwater = null
    libs.breakwaterError = firstLine(err)
  }
  libs.cockatiel = await import('cockatiel')
  libs.opossum = require('opossum')
  return libs
}

// ---------------------------------------------------------------------------------------
// The actions every library wraps (identical for all, baseline included).

const okFn = async () => 1 // success: a fresh resolved promise per call
const FAIL_ERROR = new Error('bench failure') // pre-created: nobody pays for a stack capture
const failFn = () => Promise.reject(FAIL_ERROR) // failure: a fresh rejected promise per call
const FALLBACK_VALUE = 'fallback'
// the contract's fallback signature, `async (err) => value` (it declares the error) ...
const fallbackFn = async (err) => FALLBACK_VALUE // eslint-disable-line no-unused-vars
// ... and one that declares no parameter (a library may skip building the error for it)
const fallbackNoArgFn = async () => FALLBACK_VALUE

// ---------------------------------------------------------------------------------------
// Configurations. breakwater's reference config is the one in the brief:
//   failureThreshold 0.5, minimumRequests 10, resetTimeout 60 s, time window (default).
// cockatiel's closest equivalent is SamplingBreaker (a time-window failure *rate*):
//   threshold 0.5 over 60 s, minimumRps 10/60 (= at least 10 calls in the 60 s window).
// We also report cockatiel with ConsecutiveBreaker(5), its simplest/cheapest breaker.
// opossum: errorThresholdPercentage 50, volumeThreshold 10, resetTimeout 60 s.

const BW_BASE = { timeout: 0, failureThreshold: 0.5, minimumRequests: 10, resetTimeout: 60000, logger: null }
const OP_BASE = { timeout: false, errorThresholdPercentage: 50, volumeThreshold: 10, resetTimeout: 60000 }
const NEVER = 1e9 // "never trips" knobs for the failure path

function cockatielBreaker (libs, variant, neverTrip) {
  const { SamplingBreaker, ConsecutiveBreaker } = libs.cockatiel
  if (variant === 'consecutive') return new ConsecutiveBreaker(neverTrip ? NEVER : 5)
  return new SamplingBreaker({ threshold: 0.5, duration: 60000, minimumRps: neverTrip ? NEVER : 10 / 60 })
}

function cockatielPolicy (libs, variant, neverTrip) {
  const { circuitBreaker, handleAll } = libs.cockatiel
  return circuitBreaker(handleAll, { halfOpenAfter: 60000, breaker: cockatielBreaker(libs, variant, neverTrip) })
}

/** Trip a cockatiel policy the natural way (failures) so that it sits in the Open state. */
async function tripCockatiel (libs, policy) {
  for (let i = 0; i < 50 && policy.state !== libs.cockatiel.CircuitState.Open; i++) {
    try { await policy.execute(failFn) } catch {}
  }
  if (policy.state !== libs.cockatiel.CircuitState.Open) throw new Error('could not trip the cockatiel breaker')
}

let nameSeq = 0
function uniqueName (prefix) { return `${prefix}-${process.pid}-${++nameSeq}` }

const LIBRARIES = ['baseline', 'breakwater', 'breakwater-redis', 'breakwater-dynamodb', 'cockatiel', 'cockatiel-consecutive', 'opossum']
// The rows with a shared store, and the store (in `libs`) each one uses.
const STORE_OF = { 'breakwater-redis': 'redisStore', 'breakwater-dynamodb': 'dynamoDbStore' }

const LIB_LABEL = {
  baseline: 'baseline `await fn()`',
  breakwater: 'breakwater',
  'breakwater-redis': 'breakwater + redisStore',
  'breakwater-defaults': 'breakwater (default options: time window, 30 s timeout)',
  'breakwater-dynamodb': 'breakwater + dynamoDbStore',
  cockatiel: 'cockatiel (SamplingBreaker)',
  'cockatiel-consecutive': 'cockatiel (ConsecutiveBreaker)',
  opossum: 'opossum'
}

const SCENARIOS = [
  { id: 'success', label: 'success, closed, no timeout' },
  { id: 'timeout', label: 'success, 30 s timeout' },
  { id: 'failure', label: 'failure, closed, counted' },
  { id: 'open', label: 'open, rejected' },
  { id: 'fallback', label: 'open, fallback `async (err) => v`' },
  { id: 'fallback-noarg', label: 'open, fallback `async () => v`' }
]

/**
 * Build one benchmark target: `t` is the object the generated loop reads, `expr` the
 * awaited call expression (over `t`), `rejects` whether each call rejects, `ensure()`
 * re-establishes the state before each timed run, `check(last)` validates the last
 * outcome, `teardown()` releases everything. Returns null if the library is unavailable.
 */
function makeTarget (libs, lib, scenario) {
  const rejects = scenario === 'failure' || scenario === 'open'
  const action = scenario === 'failure' || (lib === 'baseline' && scenario === 'open') ? failFn : okFn
  const t = { fn: action }
  const isFallback = scenario === 'fallback' || scenario === 'fallback-noarg'
  const fbFn = scenario === 'fallback-noarg' ? fallbackNoArgFn : fallbackFn
  const expected = isFallback && lib !== 'baseline' ? FALLBACK_VALUE : 1
  let expr
  let ensure = async () => {}
  let teardown = () => {}
  let check

  const checkValue = (last) => {
    if (last !== expected) throw new Error(`expected the call to resolve to ${JSON.stringify(expected)}, got ${describe(last)}`)
  }
  const checkSameError = (last) => {
    if (last !== FAIL_ERROR) throw new Error(`expected the action's own error to be re-thrown unchanged, got ${describe(last)}`)
  }
  check = scenario === 'failure' ? checkSameError : checkValue

  if (lib === 'baseline') {
    expr = 't.fn()'
    if (scenario === 'open') check = checkSameError
  } else if (lib === 'breakwater' || lib in STORE_OF) {
    if (!libs.breakwater) return null
    // With a store, only the success path: the question is what the store adds to it.
    if (lib in STORE_OF && (scenario !== 'success' || !libs[STORE_OF[lib]])) return null
    const { CircuitBreaker, CircuitBreakerOpenError } = libs.breakwater
    const opts = { ...BW_BASE, name: uniqueName(`bench-${scenario}`) }
    if (lib in STORE_OF) {
      opts.store = libs[STORE_OF[lib]]
      // The first call waits for the initial load from the store; do it before timing.
      let loaded = false
      ensure = async () => { if (!loaded) { await t.b.execute(t.fn); loaded = true } }
    }
    if (scenario === 'timeout') opts.timeout = 30000
    if (scenario === 'failure') Object.assign(opts, { failureThreshold: 1, minimumRequests: NEVER })
    if (isFallback) opts.fallback = fbFn
    t.b = new CircuitBreaker(opts)
    expr = 't.b.execute(t.fn)'
    if (scenario === 'open' || isFallback) ensure = async () => { t.b.open() }
    if (scenario === 'open') {
      check = (last) => {
        if (!(last instanceof CircuitBreakerOpenError)) throw new Error(`expected a CircuitBreakerOpenError, got ${describe(last)}`)
      }
    }
    if (scenario === 'failure') {
      const inner = check
      check = (last) => {
        inner(last)
        const st = t.b.getStats()
        if (st.state !== 'CLOSED') throw new Error(`failure-path breaker left CLOSED (state ${st.state}) although minimumRequests is ${NEVER}`)
      }
    }
    teardown = () => t.b.dispose()
  } else if (lib === 'cockatiel' || lib === 'cockatiel-consecutive') {
    const variant = lib === 'cockatiel' ? 'sampling' : 'consecutive'
    const { wrap, timeout, TimeoutStrategy, fallback, handleAll, BrokenCircuitError } = libs.cockatiel
    const cb = cockatielPolicy(libs, variant, scenario === 'failure')
    if (scenario === 'timeout') {
      // aggressive = rejects at the deadline even if the action ignores the signal (what
      // breakwater and opossum do); timeout inside the breaker so that timeouts count.
      t.p = wrap(cb, timeout(30000, TimeoutStrategy.Aggressive))
    } else if (isFallback) {
      t.p = wrap(fallback(handleAll, fbFn), cb)
    } else {
      t.p = cb
    }
    expr = 't.p.execute(t.fn)'
    if (scenario === 'open' || isFallback) {
      ensure = async () => { if (cb.state !== libs.cockatiel.CircuitState.Open) await tripCockatiel(libs, cb) }
    }
    if (scenario === 'open') {
      check = (last) => {
        if (!(last instanceof BrokenCircuitError)) throw new Error(`expected a BrokenCircuitError, got ${describe(last)}`)
      }
    }
  } else if (lib === 'opossum') {
    const Opossum = libs.opossum
    const opts = { ...OP_BASE }
    if (scenario === 'timeout') opts.timeout = 30000
    if (scenario === 'failure') opts.volumeThreshold = NEVER
    t.b = new Opossum(action, opts)
    if (isFallback) t.b.fallback(fbFn)
    expr = 't.b.fire()'
    if (scenario === 'open' || isFallback) ensure = async () => { t.b.open() }
    if (scenario === 'failure') {
      // opossum re-reads (and re-sorts the latencies of) its whole 10 s rolling window on
      // every failure, so its per-call cost grows with the calls in the window: start every
      // timed run from a fresh breaker so that the runs are comparable.
      ensure = async () => { t.b.shutdown(); t.b = new Opossum(action, opts) }
    }
    if (scenario === 'open') {
      check = (last) => {
        if (!(last instanceof Error) || last.code !== 'EOPENBREAKER') throw new Error(`expected opossum's EOPENBREAKER, got ${describe(last)}`)
      }
    }
    teardown = () => t.b.shutdown()
  } else {
    throw new Error(`unknown library ${lib}`)
  }
  return { lib, scenario, t, expr, rejects, ensure, check, teardown }
}

function describe (v) {
  if (v instanceof Error) return `${v.constructor.name}: ${firstLine(v)}`
  try { return JSON.stringify(v) } catch { return String(v) }
}

let loopSeq = 0
/**
 * Compile a dedicated loop for one target, so that every library gets its own
 * monomorphic call site and feedback (a shared loop would go megamorphic and penalise
 * whichever library runs last). The loop is the typical pattern: sequential awaits.
 * It runs until `deadline` (an hrtime.bigint value, checked every 32 calls, so a library
 * whose per-call cost grows cannot stall the run) and returns { n, last }.
 */
function compileLoop (target) {
  const call = target.rejects
    ? `try { await ${target.expr}; } catch (e) { last = e; }`
    : `last = await ${target.expr};`
  const src = `// loop ${++loopSeq} ${target.lib}/${target.scenario}\n` +
    'return async function loop (deadline) {\n' +
    '  let last; let n = 0;\n' +
    `  do { for (let i = 0; i < 32; i++) { ${call} } n += 32; } while (hr() < deadline);\n` +
    '  return { n, last };\n' +
    '}'
  // eslint-disable-next-line no-new-func
  return new Function('t', 'hr', src)(target.t, process.hrtime.bigint)
}

module.exports = {
  ROOT,
  sanitize,
  firstLine,
  loadLibs,
  okFn,
  failFn,
  FAIL_ERROR,
  fallbackFn,
  fallbackNoArgFn,
  FALLBACK_VALUE,
  BW_BASE,
  OP_BASE,
  NEVER,
  cockatielPolicy,
  tripCockatiel,
  uniqueName,
  LIBRARIES,
  LIB_LABEL,
  SCENARIOS,
  makeTarget,
  compileLoop,
  describe
}
