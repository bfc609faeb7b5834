'use strict'
// The floors behind issue 14's goals: isolated loops in the user's shape, each library against
// the least that any breaker doing the same job must pay. One process, each loop compiled on
// its own (its own call sites and type feedback), CPU time per call, the minimum of several
// interleaved runs (the minimum is the figure least disturbed by a shared machine).
//
//   node benchmark/floors.js [--runs=9] [--ms=100]
//
// Prints a markdown table: ns per call and the overhead over `await fn()` of the same kind.

const { loadLibs, cockatielPolicy } = require('./targets')

const arg = (name, dflt) => Number((process.argv.find((a) => a.startsWith(`--${name}=`)) || '').split('=')[1] || dflt)
const RUNS = arg('runs', 9)
const MS = arg('ms', 100)

const okFn = async () => 1
const boomFn = async () => { throw new Error('boom') }
const ok = (v) => v
// What a breaker that must replace a rejection uses to pass it on without a throw.
class Rethrow { constructor (e) { this.e = e } then (_, reject) { reject(this.e) } }
const err = (e) => new Rethrow(e)

// The timed-call floor, without a breaker: what any call with a deadline must make (a promise
// of its own to settle at the deadline, a record of the call, a reaction to the action's
// outcome), and the monotonic clock read its deadline needs; the breaker's own work excluded.
let R = null
let J = null
function exec (resolve, reject) { R = resolve; J = reject }
class Call { constructor (t) { this.deadline = t; this.done = false; this.resolve = R; this.reject = J } }
function timedFloor (action) {
  const t = process.hrtime()
  const d = new Promise(exec)
  const call = new Call(t[0] * 1e3 + t[1] / 1e6 + 30000)
  const p = action(action.length > 0 ? null : undefined)
  p.then((v) => { call.done = true; call.resolve(v) }, (e) => { call.done = true; call.reject(e) })
  return d
}

function loopOf (expr) {
  // eslint-disable-next-line no-new-func
  return new Function('t', 'deadline', 'hr', `return (async () => {
    let s = 0; let c = 0; let n = 0
    do {
      for (let i = 0; i < 1024; i++) { try { s += await ${expr} } catch { c++ } }
      n += 1024
      await new Promise(setImmediate)
    } while (hr() < deadline)
    return { n, s, c }
  })()`)
}

async function main () {
  const libs = await loadLibs()
  const { CircuitBreaker } = libs.breakwater
  let seq = 0
  const bw = (opts) => new CircuitBreaker({ name: `floors-${++seq}`, logger: null, ...opts })
  const NEVER = { failureThreshold: 1, minimumRequests: 1e9 }
  const rows = [
    ['success: `await fn()`', 'ok', () => ({ fn: okFn }), 't.fn()'],
    ['success: `await fn().then(ok, err)` (the least a breaker that sees the outcome adds)', 'ok', () => ({ fn: okFn, ok, err }), 't.fn().then(t.ok, t.err)'],
    ['success: breakwater, `timeout: 0`', 'ok', () => ({ b: bw({ timeout: 0 }), fn: okFn }), 't.b.execute(t.fn)'],
    ['success: cockatiel ConsecutiveBreaker', 'ok', () => ({ p: cockatielPolicy(libs, 'consecutive', false), fn: okFn }), 't.p.execute(t.fn)'],
    ['success: timed-call floor, no breaker (a promise, a call record, two reactions, a monotonic clock read, `action.length`)', 'ok', () => ({ f: timedFloor, fn: okFn }), 't.f(t.fn)'],
    ['success: breakwater, default options (30 s timeout)', 'ok', () => ({ b: bw({}), fn: okFn }), 't.b.execute(t.fn)'],
    ['failure (`new Error` per call): `await fn()`', 'fail', () => ({ fn: boomFn }), 't.fn()'],
    ['failure: `fn().then(ok, err)`', 'fail', () => ({ fn: boomFn, ok, err }), 't.fn().then(t.ok, t.err)'],
    ['failure: breakwater, `timeout: 0`', 'fail', () => ({ b: bw({ timeout: 0, ...NEVER }), fn: boomFn }), 't.b.execute(t.fn)'],
    ['failure: cockatiel ConsecutiveBreaker', 'fail', () => ({ p: cockatielPolicy(libs, 'consecutive', true), fn: boomFn }), 't.p.execute(t.fn)']
  ].map(([label, kind, make, expr]) => ({ label, kind, make, loop: loopOf(expr), best: Infinity }))

  const hr = process.hrtime.bigint
  const run = async (row, ms) => {
    const t = row.make()
    const c0 = process.cpuUsage()
    const r = await row.loop(t, hr() + BigInt(ms * 1e6), hr)
    const c = process.cpuUsage(c0)
    if (row.kind === 'ok' ? r.c !== 0 || r.s !== r.n : r.c !== r.n) throw new Error(`${row.label}: wrong outcomes ${JSON.stringify(r)}`)
    if (t.b) t.b.dispose()
    return ((c.user + c.system) * 1000) / r.n
  }
  for (const row of rows) await run(row, MS)
  for (let i = 0; i < RUNS; i++) {
    for (let j = 0; j < rows.length; j++) {
      const row = rows[(i + j) % rows.length]
      row.best = Math.min(row.best, await run(row, MS))
    }
    process.stderr.write(`floors: run ${i + 1}/${RUNS}\n`)
  }
  const base = { ok: rows[0].best, fail: rows[6].best }
  console.log('| loop | ns/call | over `await fn()` |\n|---|---:|---:|')
  for (const row of rows) {
    const over = row.best - base[row.kind]
    console.log(`| ${row.label} | ${Math.round(row.best).toLocaleString('en-US')} | ${row === rows[0] || row === rows[6] ? '' : `+${Math.round(over).toLocaleString('en-US')}`} |`)
  }
}

main().catch((e) => { console.error(e); process.exit(1) })
