'use strict'
// Issue 14's rows: the hot paths measured the way users write them, not the way a harness
// would. Each library's call is awaited inside an async function with try/catch,
// `for (…) { try { s += await call() } catch { c++ } }`, yielding to the event loop every
// 1,024 calls; failures throw a new Error per call; every timed run gets a fresh breaker
// with a unique name; rounds are interleaved and the figure is the median. One process.

const { firstLine, BW_BASE, OP_BASE, NEVER, cockatielPolicy, tripCockatiel, uniqueName, describe } = require('./targets')

// The actions users wrap: an async function that resolves, and one that throws a new Error.
const okFn = async () => 1
const boomFn = async () => { throw new Error('boom') }
// A fallback that declares the error, as in the contract; numeric so that `s +=` stays cheap.
const FALLBACK = 0
const fallbackFn = async (err) => FALLBACK // eslint-disable-line no-unused-vars

const LIBS = ['baseline', 'breakwater', 'breakwater-nt', 'cockatiel', 'cockatiel-consecutive', 'opossum']
const LABEL = {
  baseline: 'baseline `await fn()`',
  breakwater: 'breakwater (default options)',
  'breakwater-nt': 'breakwater (`timeout: 0`)',
  cockatiel: 'cockatiel (SamplingBreaker)',
  'cockatiel-consecutive': 'cockatiel (ConsecutiveBreaker)',
  opossum: 'opossum'
}

// Each path lists the libraries it runs. `defaults` is the configuration most users keep:
// breakwater with nothing but a name (time window, 30 s timeout) against opossum with a
// timeout (`timeout: 30000`, its own default being 10 s) and against breakwater without one.
const PATHS = [
  { id: 'success', label: 'success, no timeout', libs: ['baseline', 'breakwater-nt', 'cockatiel', 'cockatiel-consecutive', 'opossum'] },
  { id: 'failure', label: 'failure, `new Error` per call, counted', libs: ['baseline', 'breakwater-nt', 'cockatiel', 'cockatiel-consecutive', 'opossum'] },
  { id: 'defaults', label: 'success, default options (30 s timeout)', libs: ['baseline', 'breakwater', 'breakwater-nt', 'opossum'] },
  { id: 'open', label: 'open, rejected', libs: ['breakwater', 'cockatiel', 'cockatiel-consecutive', 'opossum'] },
  { id: 'fallback', label: 'open, fallback `async (err) => v`', libs: ['breakwater', 'cockatiel', 'cockatiel-consecutive', 'opossum'] }
]

/**
 * One target: `make()` builds a fresh breaker (unique name) for a timed run and returns the
 * object the loop reads as `t`, `expr` is the awaited call, `check(result)` validates a run.
 */
function makeTarget (libs, lib, path) {
  const failing = path === 'failure'
  const fn = failing ? boomFn : okFn
  const opened = path === 'open' || path === 'fallback'
  const withFallback = path === 'fallback'
  const expectOk = path === 'fallback' ? FALLBACK : 1
  let make
  let release = () => {}
  let expr
  let isRejection = () => false // the error of an open circuit, per library

  if (lib === 'baseline') {
    make = async () => ({ fn })
    expr = 't.fn()'
  } else if (lib === 'breakwater' || lib === 'breakwater-nt') {
    if (!libs.breakwater) return null
    const { CircuitBreaker, CircuitBreakerOpenError } = libs.breakwater
    make = async () => {
      // `breakwater`: nothing but a name (and no log line when the open rows force it open)
      const opts = lib === 'breakwater' ? { name: uniqueName(`user-${path}`), logger: null } : { ...BW_BASE, name: uniqueName(`user-${path}`) }
      if (failing) Object.assign(opts, { failureThreshold: 1, minimumRequests: NEVER })
      if (withFallback) opts.fallback = fallbackFn
      const b = new CircuitBreaker(opts)
      if (opened) b.open()
      return { b, fn }
    }
    release = (t) => t.b.dispose()
    expr = 't.b.execute(t.fn)'
    isRejection = (e) => e instanceof CircuitBreakerOpenError
  } else if (lib === 'cockatiel' || lib === 'cockatiel-consecutive') {
    const { wrap, fallback, handleAll, BrokenCircuitError } = libs.cockatiel
    make = async () => {
      const cb = cockatielPolicy(libs, lib === 'cockatiel' ? 'sampling' : 'consecutive', failing)
      if (opened) await tripCockatiel(libs, cb)
      return { p: withFallback ? wrap(fallback(handleAll, fallbackFn), cb) : cb, fn }
    }
    expr = 't.p.execute(t.fn)'
    isRejection = (e) => e instanceof BrokenCircuitError
  } else if (lib === 'opossum') {
    const Opossum = libs.opossum
    make = async () => {
      const opts = { ...OP_BASE }
      if (path === 'defaults') opts.timeout = 30000
      if (failing) opts.volumeThreshold = NEVER
      const b = new Opossum(fn, opts)
      if (withFallback) b.fallback(fallbackFn)
      if (opened) b.open()
      return { b }
    }
    release = (t) => t.b.shutdown()
    expr = 't.b.fire()'
    isRejection = (e) => e instanceof Error && e.code === 'EOPENBREAKER'
  } else {
    throw new Error(`unknown library ${lib}`)
  }

  const check = ({ n, s, c, last }) => {
    if (path === 'open') {
      if (c !== n || !isRejection(last)) throw new Error(`expected every call to be rejected by the open circuit, got ${c}/${n} errors, last ${describe(last)}`)
    } else if (failing) {
      if (c !== n || !(last instanceof Error) || last.message !== 'boom') throw new Error(`expected every call to re-throw the action's error, got ${c}/${n} errors, last ${describe(last)}`)
    } else if (c !== 0 || s !== n * expectOk) {
      throw new Error(`expected ${n} calls resolving to ${expectOk}, got sum ${s} and ${c} errors (last ${describe(last)})`)
    }
  }
  return { lib, path, make, release, expr, check, loop: compile(lib, path, expr) }
}

let seq = 0
/**
 * The user's loop, compiled once per (library, path) so each library has its own call site
 * (as in the hot-path rows). Runs blocks of 1,024 calls, each followed by a turn of the event
 * loop, until `deadline` (hrtime bigint); returns { n, s, c, last }.
 */
function compile (lib, path, expr) {
  const src = `// user loop ${++seq} ${lib}/${path}\n` +
    'return async function userLoop (t, deadline) {\n' +
    '  let s = 0; let c = 0; let n = 0; let last\n' +
    '  do {\n' +
    `    for (let i = 0; i < 1024; i++) { try { s += await ${expr} } catch (e) { c++; last = e } }\n` +
    '    n += 1024\n' +
    '    await new Promise(setImmediate)\n' +
    '  } while (hr() < deadline)\n' +
    '  return { n, s, c, last }\n' +
    '}'
  // eslint-disable-next-line no-new-func
  return new Function('hr', src)(process.hrtime.bigint)
}

/**
 * Runs every path: warm-up per target, then `rounds` rounds, each running every library once
 * on a fresh breaker for `runMs`, in a rotating order, after a gc().
 */
async function runUserLoop (libs, { rounds, runMs, warmMs }, { gc, median, log, fmtNs, hr }) {
  const out = {}
  for (const p of PATHS) {
    const res = out[p.id] = {}
    const targets = []
    for (const lib of p.libs) {
      try {
        const tg = makeTarget(libs, lib, p.id)
        if (!tg) { res[lib] = { skipped: 'breakwater not loadable' }; continue }
        tg.samples = []
        targets.push(tg)
      } catch (err) { res[lib] = { error: `setup: ${firstLine(err)}` } }
    }
    const timed = async (tg, ms) => {
      const t = await tg.make()
      try {
        gc()
        const t0 = hr()
        const r = await tg.loop(t, t0 + BigInt(Math.round(ms * 1e6)))
        const dt = Number(hr() - t0)
        tg.check(r)
        return dt / r.n
      } finally { tg.release(t) }
    }
    for (const tg of targets) {
      try { await timed(tg, warmMs) } catch (err) { tg.error = firstLine(err) }
    }
    for (let r = 0; r < rounds; r++) {
      const list = targets.filter((tg) => !tg.error)
      for (let i = 0; i < list.length; i++) {
        const tg = list[(i + r) % list.length]
        try { tg.samples.push(await timed(tg, runMs)) } catch (err) { tg.error = firstLine(err) }
      }
    }
    const base = targets.find((tg) => tg.lib === 'baseline')
    const baseNs = base && !base.error ? median(base.samples) : NaN
    for (const tg of targets) {
      if (tg.error) { res[tg.lib] = { error: tg.error }; continue }
      const ns = median(tg.samples)
      res[tg.lib] = { nsPerCall: ns, overheadNs: ns - baseNs, samples: tg.samples }
    }
    log(`  user loop, ${p.label}: ` + p.libs.map((l) => `${l} ${fmtNs(res[l]?.nsPerCall)}`).join(', '))
  }
  return out
}

function userTable (U, fmtNs, fmtSigned) {
  const lines = ['| path | ' + LIBS.map((l) => LABEL[l]).join(' | ') + ' |', '|---|' + LIBS.map(() => '---:').join('|') + '|']
  for (const p of PATHS) {
    const cells = LIBS.map((l) => {
      const r = U[p.id]?.[l]
      if (!r) return ''
      if (r.skipped) return 'skipped'
      if (r.error) return 'error¹'
      if (l === 'baseline' || !Number.isFinite(r.overheadNs)) return fmtNs(r.nsPerCall)
      return `${fmtNs(r.nsPerCall)} (${fmtSigned(r.overheadNs, 0)})`
    })
    lines.push(`| ${p.label} | ${cells.join(' | ')} |`)
  }
  return lines.join('\n')
}

function userProblems (U) {
  const notes = []
  for (const [p, row] of Object.entries(U || {})) {
    for (const [lib, r] of Object.entries(row)) if (r.error) notes.push(`user loop ${p} / ${lib}: ${r.error}`)
  }
  return notes
}

module.exports = { runUserLoop, userTable, userProblems, LABEL }
