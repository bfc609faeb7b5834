'use strict'
// Issue 16's cold-start rows: what a Lambda cold start pays for the library, measured on the
// package a user installs. breakwater is packed (`npm pack`, the platform package too) and
// installed into an empty app by scripts/stage-install.js; opossum and cockatiel are copied
// next to it from the repo's node_modules. Every figure comes from child processes, spawned
// interleaved (every round runs every variant once, rotating the order), medians.
//
// Variants:
//   require   `node -e "require(X)"`: the whole process (wall time), and inside it the time
//             and resident memory the `require` added
//   import    the same as an ES module (`node --input-type=module -e "await import(X)"`), the
//             way most Lambda functions are written now
//   first     require + create a breaker + the first call: time from process start to the
//             first result (`performance.now()`), and the memory the breaker and call added
//   bundle    a Lambda-style handler bundled with esbuild as the README documents
//             (breakwater external; opossum and cockatiel bundled in), started with node and
//             invoked once: time from process start to its first response
//   warm      the require again, after the process resolved another package through its
//             `exports` map (as a handler that also imports @aws-sdk/*, @middy/core or any
//             package with a map): the first such resolution in a process loads Node's ESM
//             resolver and compiles its regular expressions, once, for whichever package comes
//             first; opossum has no map and never pays it
//   floor     `require` of a one-line package with an `exports` map, and without one

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { ROOT, sanitize, firstLine } = require('./targets')

const LIBS = ['breakwater', 'opossum', 'cockatiel']

// Source of each library's minimal use: a breaker around an async call.
const USE = {
  breakwater: {
    import: "const { CircuitBreaker } = require('breakwater')",
    esm: "import { CircuitBreaker } from 'breakwater'",
    make: "new CircuitBreaker({ name: 'weather' })",
    call: (b) => `${b}.execute(async () => 1)`
  },
  opossum: {
    import: "const CircuitBreaker = require('opossum')",
    esm: "import CircuitBreaker from 'opossum'",
    make: 'new CircuitBreaker(async () => 1, { timeout: 30000 })',
    call: (b) => `${b}.fire()`
  },
  cockatiel: {
    import: "const { circuitBreaker, handleAll, ConsecutiveBreaker } = require('cockatiel')",
    esm: "import { circuitBreaker, handleAll, ConsecutiveBreaker } from 'cockatiel'",
    make: 'circuitBreaker(handleAll, { halfOpenAfter: 60000, breaker: new ConsecutiveBreaker(5) })',
    call: (b) => `${b}.execute(async () => 1)`
  }
}

// What a child prints: ms since process start and RSS at each step, as one JSON line. The
// harness reads its clock with performance.now(), whose first use loads perf_hooks and ten
// internal modules (~0.7 MiB): it is touched first, so that no library's figures carry it.
// So are an async function, a promise reaction and a timer: the first of each in a process
// runs V8 builtins and Node code for the first time, whose pages (~0.12-0.25 MiB of `node`'s
// text) every library's first call paid otherwise (opossum's first breaker and call read
// +0.25 MiB with them, +0.13 without); a Lambda function's runtime has run all three before
// the handler's module is loaded.
const REPORT = 'performance.now(); (async () => { await null })(); clearTimeout(setTimeout(() => {}, 1)); ' +
  'const __m = () => process.memoryUsage().rss; ' +
  'const __out = (o) => process.stdout.write("COLD " + JSON.stringify({ ...o, maxRss: process.resourceUsage().maxRSS * 1024 }) + "\\n");'

function requireScript (lib) {
  if (!lib) return `${REPORT} const r0 = __m(); __out({ rss0: r0, rss1: r0, t0: 0, t1: 0 })`
  return `${REPORT} const r0 = __m(); const t0 = performance.now(); require(${JSON.stringify(lib)}); const t1 = performance.now(); ` +
    '__out({ rss0: r0, rss1: __m(), t0, t1 })'
}

function importScript (lib) {
  if (!lib) return `${REPORT} const r0 = __m(); __out({ rss0: r0, rss1: r0, t0: 0, t1: 0 })`
  return `${REPORT} const r0 = __m(); const t0 = performance.now(); await import(${JSON.stringify(lib)}); const t1 = performance.now(); ` +
    '__out({ rss0: r0, rss1: __m(), t0, t1 })'
}

function firstScript (lib) {
  const u = USE[lib]
  return `${REPORT} const r0 = __m(); ${u.import}; const r1 = __m(); const b = ${u.make}; ` +
    `${u.call('b')}.then((v) => { const t = performance.now(); if (v !== 1) throw new Error('unexpected result ' + v); __out({ rss0: r0, rss1: r1, rss2: __m(), tFirst: t }) })`
}

// One-line packages: what any package pays to be required, with and without an exports map.
const FLOORS = {
  'floor-exports-map': { exports: { '.': { import: './index.mjs', require: './index.js' }, './package.json': './package.json' } },
  'floor-plain': {}
}

function warmScript (lib) {
  return `${REPORT} require.resolve('floor-exports-map'); const r0 = __m(); const t0 = performance.now(); require(${JSON.stringify(lib)}); const t1 = performance.now(); ` +
    '__out({ rss0: r0, rss1: __m(), t0, t1 })'
}

function handlerSource (lib) {
  const u = USE[lib]
  return `${u.esm}
const breaker = ${u.make}
export const handler = async (event) => {
  const n = await ${u.call('breaker')}
  return { statusCode: 200, body: JSON.stringify({ n, path: event.rawPath }) }
}
`
}

function bundleRunner (file) {
  return `${REPORT} require(${JSON.stringify(file)}).handler({ rawPath: '/weather' }).then((r) => { const t = performance.now(); ` +
    'if (r.statusCode !== 200) throw new Error("unexpected response " + JSON.stringify(r)); __out({ tFirst: t, rss2: __m() }) })'
}

/** The empty app: breakwater installed from its packed tarballs, the others copied, handlers bundled. */
function stage (dir) {
  const { stageInstall } = require('../scripts/stage-install.js')
  const r = stageInstall(dir)
  for (const lib of ['opossum', 'cockatiel']) {
    fs.cpSync(path.join(ROOT, 'node_modules', lib), path.join(r.app, 'node_modules', lib), { recursive: true })
  }
  for (const [name, extra] of Object.entries(FLOORS)) {
    const d = path.join(r.app, 'node_modules', name)
    fs.mkdirSync(d, { recursive: true })
    fs.writeFileSync(path.join(d, 'package.json'), JSON.stringify({ name, version: '1.0.0', main: 'index.js', ...extra }))
    fs.writeFileSync(path.join(d, 'index.js'), "'use strict'\nmodule.exports = { one: 1 }\n")
    fs.writeFileSync(path.join(d, 'index.mjs'), 'export const one = 1\n')
  }
  const esbuild = require('esbuild')
  const bundles = {}
  for (const lib of LIBS) {
    const src = path.join(r.app, `handler-${lib}.mjs`)
    fs.writeFileSync(src, handlerSource(lib))
    const out = path.join(r.app, 'dist', `${lib}.js`)
    // as the README's recipe: --bundle --platform=node --target=node20 --external:breakwater
    esbuild.buildSync({ entryPoints: [src], bundle: true, platform: 'node', target: 'node20', format: 'cjs', external: ['breakwater'], outfile: out, logLevel: 'error' })
    bundles[lib] = out
  }
  return { app: r.app, bundles }
}

function spawn (app, code) {
  const args = code.esm ? ['--input-type=module', '-e', code.esm] : ['-e', code]
  const t0 = process.hrtime.bigint()
  const p = spawnSync(process.execPath, args, { cwd: app, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } })
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6
  const line = (p.stdout || '').split('\n').find((l) => l.startsWith('COLD '))
  if (p.status !== 0 || !line) {
    return { error: sanitize((p.stderr || '').trim().split('\n').slice(-2).join(' | ')).slice(0, 300) || `exit ${p.status}` }
  }
  return { wallMs, ...JSON.parse(line.slice(5)) }
}

async function runColdStart ({ rounds }, { median, log }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'breakwater-cold-'))
  try {
    let st
    try { st = stage(dir) } catch (err) { return { error: `staging the app: ${firstLine(err)}` } }
    const variants = { 'require:node': requireScript(null), 'import:node': { esm: importScript(null) } }
    for (const lib of LIBS) {
      variants[`require:${lib}`] = requireScript(lib)
      variants[`import:${lib}`] = { esm: importScript(lib) }
      variants[`first:${lib}`] = firstScript(lib)
      variants[`bundle:${lib}`] = bundleRunner(st.bundles[lib])
      if (lib !== 'cockatiel') variants[`warm:${lib}`] = warmScript(lib)
    }
    for (const name of Object.keys(FLOORS)) variants[`floor:${name}`] = requireScript(name)
    const names = Object.keys(variants)
    const runs = Object.fromEntries(names.map((n) => [n, []]))
    const errors = {}
    for (const n of names) spawn(st.app, variants[n]) // page cache
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < names.length; i++) {
        const n = names[(i + r) % names.length]
        const res = spawn(st.app, variants[n])
        if (res.error) errors[n] = res.error
        else runs[n].push({ round: r, ...res })
      }
    }
    const med = (n, f) => median(runs[n].map(f))
    // the fastest spawn: the machine's noise only ever adds time
    const fastest = (n, f) => (runs[n].length ? Math.min(...runs[n].map(f)) : NaN)
    // The ratio of two variants' wall times within each round (spawned next to each other),
    // median over rounds: steadier than a ratio of medians when the machine's load drifts.
    const paired = (a, b, f = (x) => x.wallMs) => {
      const byRound = new Map(runs[b].map((x) => [x.round, x]))
      return median(runs[a].filter((x) => byRound.has(x.round)).map((x) => f(x) / f(byRound.get(x.round))))
    }
    const out = { rounds, errors, runs, figures: {}, floors: {}, paired: {} }
    for (const lib of ['node', ...LIBS]) {
      out.figures[lib] = {
        wallMs: med(`require:${lib}`, (x) => x.wallMs),
        importMs: med(`require:${lib}`, (x) => x.t1 - x.t0),
        importRss: med(`require:${lib}`, (x) => x.rss1 - x.rss0),
        maxRss: med(`require:${lib}`, (x) => x.maxRss),
        esmWallMs: med(`import:${lib}`, (x) => x.wallMs),
        esmImportMs: med(`import:${lib}`, (x) => x.t1 - x.t0),
        esmImportRss: med(`import:${lib}`, (x) => x.rss1 - x.rss0),
        wallMinMs: fastest(`require:${lib}`, (x) => x.wallMs),
        esmWallMinMs: fastest(`import:${lib}`, (x) => x.wallMs)
      }
      if (lib === 'node') continue
      Object.assign(out.figures[lib], {
        firstMs: med(`first:${lib}`, (x) => x.tFirst),
        firstRss: med(`first:${lib}`, (x) => x.rss2 - x.rss1),
        bundleMs: med(`bundle:${lib}`, (x) => x.tFirst),
        bundleWallMs: med(`bundle:${lib}`, (x) => x.wallMs),
        bundleMaxRss: med(`bundle:${lib}`, (x) => x.maxRss),
        firstMinMs: fastest(`first:${lib}`, (x) => x.tFirst),
        bundleMinMs: fastest(`bundle:${lib}`, (x) => x.tFirst)
      })
    }
    for (const lib of ['breakwater', 'opossum']) {
      Object.assign(out.figures[lib], {
        warmImportMs: med(`warm:${lib}`, (x) => x.t1 - x.t0),
        warmImportRss: med(`warm:${lib}`, (x) => x.rss1 - x.rss0)
      })
    }
    for (const name of Object.keys(FLOORS)) {
      out.floors[name] = { importMs: med(`floor:${name}`, (x) => x.t1 - x.t0), importRss: med(`floor:${name}`, (x) => x.rss1 - x.rss0) }
    }
    for (const lib of ['breakwater', 'cockatiel']) {
      out.paired[lib] = {
        require: paired(`require:${lib}`, 'require:opossum'),
        import: paired(`import:${lib}`, 'import:opossum'),
        first: paired(`first:${lib}`, 'first:opossum', (x) => x.tFirst),
        bundle: paired(`bundle:${lib}`, 'bundle:opossum', (x) => x.tFirst)
      }
    }
    const f = out.figures
    log('  cold start (medians): ' + ['node', ...LIBS].map((l) => `${l} ${f[l].wallMs.toFixed(1)} ms, ESM ${f[l].esmWallMs.toFixed(1)} ms` +
      (l === 'node' ? '' : ` (require ${f[l].importMs.toFixed(1)} ms, +${(f[l].importRss / 2 ** 20).toFixed(2)} MiB; first result ${f[l].firstMs.toFixed(1)} ms, +${(f[l].firstRss / 2 ** 20).toFixed(2)} MiB; bundle ${f[l].bundleMs.toFixed(1)} ms)`)).join(', '))
    return out
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

const GOALS16 = { importVsOpossum: 1.0, esmVsOpossum: 1.0, firstVsOpossum: 1.0, bundleVsOpossum: 1.0, importRssMiB: 1, firstRssMiB: 1.5 }

/** Issue 16's goals, in the shape of bench.js's goal rows. */
function coldGoals (C, ratioGoal) {
  const f = C?.figures
  if (!f) return []
  const bw = f.breakwater
  const op = f.opossum
  const abs = (id, label, value, limit) => ({
    id, label, value, ref: NaN, ratio: NaN, limit, unit: 'MiB', cmp: 'abs',
    result: Number.isFinite(value) ? (value <= limit ? 'PASS' : 'MISS') : 'SKIP'
  })
  return [
    ratioGoal({ id: 'cold-require', label: 'whole process `node -e "require(X)"`', value: bw.wallMs, ref: op.wallMs, alt: f.cockatiel.wallMs, refLabel: "opossum's", limit: GOALS16.importVsOpossum, unit: 'ms' }),
    ratioGoal({ id: 'cold-import', label: 'whole process `node --input-type=module -e "await import(X)"`', value: bw.esmWallMs, ref: op.esmWallMs, alt: f.cockatiel.esmWallMs, refLabel: "opossum's", limit: GOALS16.esmVsOpossum, unit: 'ms' }),
    ratioGoal({ id: 'cold-first', label: 'time to first result (require + new breaker + first call), from process start', value: bw.firstMs, ref: op.firstMs, alt: f.cockatiel.firstMs, refLabel: "opossum's", limit: GOALS16.firstVsOpossum, unit: 'ms' }),
    ratioGoal({ id: 'cold-bundle', label: 'esbuild-bundled handler (breakwater external): first response, from process start', value: bw.bundleMs, ref: op.bundleMs, alt: f.cockatiel.bundleMs, refLabel: "opossum's", limit: GOALS16.bundleVsOpossum, unit: 'ms' }),
    abs('cold-import-rss', 'resident memory added by the import', bw.importRss / 2 ** 20, GOALS16.importRssMiB),
    abs('cold-first-rss', 'resident memory added by the first breaker and call', bw.firstRss / 2 ** 20, GOALS16.firstRssMiB)
  ]
}

function coldTable (C) {
  const f = C.figures
  const mib = (v) => Number.isFinite(v) ? `${v >= 0 ? '+' : ''}${(v / 2 ** 20).toFixed(2)} MiB` : '—'
  const msf = (v) => Number.isFinite(v) ? `${v.toFixed(1)} ms` : '—'
  const cols = ['breakwater', 'opossum', 'cockatiel', 'node']
  const rows = [
    ['whole process `node -e "require(X)"` (wall)', (l) => msf(f[l].wallMs)],
    ['added to the bare process', (l) => (l === 'node' ? '—' : msf(f[l].wallMs - f.node.wallMs))],
    ['`require(X)` inside the process', (l) => (l === 'node' ? '—' : msf(f[l].importMs))],
    ['resident memory added by the import', (l) => (l === 'node' ? '—' : mib(f[l].importRss))],
    ['peak RSS of the `require` process', (l) => mib(f[l].maxRss).replace('+', '')],
    ['whole process `node --input-type=module -e "await import(X)"` (wall)', (l) => msf(f[l].esmWallMs)],
    ['`await import(X)` inside the process', (l) => (l === 'node' ? '—' : msf(f[l].esmImportMs))],
    ['resident memory added by the `import`', (l) => (l === 'node' ? '—' : mib(f[l].esmImportRss))],
    ['first result (require + breaker + call), from process start', (l) => (l === 'node' ? '—' : msf(f[l].firstMs))],
    ['resident memory added by the first breaker and call', (l) => (l === 'node' ? '—' : mib(f[l].firstRss))],
    ['bundled handler: first response, from process start', (l) => (l === 'node' ? '—' : msf(f[l].bundleMs))],
    ['bundled handler: peak RSS', (l) => (l === 'node' ? '—' : mib(f[l].bundleMaxRss).replace('+', ''))],
    ['`require(X)` after another package was resolved through its `exports` map', (l) => (f[l].warmImportMs === undefined ? '—' : msf(f[l].warmImportMs))],
    ['resident memory added by that `require`', (l) => (f[l].warmImportRss === undefined ? '—' : mib(f[l].warmImportRss))]
  ]
  const P = C.paired || {}
  const ratio = (l, k) => (l === 'opossum' ? '1' : Number.isFinite(P[l]?.[k]) ? P[l][k].toFixed(2) : '—')
  const fast = (k) => (l) => (Number.isFinite(f[l][k]) ? msf(f[l][k]) : '—')
  rows.push(
    ['whole process `require`, fastest spawn', fast('wallMinMs')],
    ['whole process `import`, fastest spawn', fast('esmWallMinMs')],
    ['first result, fastest spawn', fast('firstMinMs')],
    ['bundled handler: first response, fastest spawn', fast('bundleMinMs')],
    ['whole process `require`: ratio to opossum in the same round, median', (l) => ratio(l, 'require')],
    ['whole process `import`: ratio to opossum in the same round, median', (l) => ratio(l, 'import')],
    ['first result: ratio to opossum in the same round, median', (l) => ratio(l, 'first')],
    ['bundled handler: ratio to opossum in the same round, median', (l) => ratio(l, 'bundle')]
  )
  const lines = ['| figure | breakwater | opossum | cockatiel | bare `node -e 0` |', '|---|---:|---:|---:|---:|']
  for (const [label, cell] of rows) lines.push(`| ${label} | ${cols.map(cell).join(' | ')} |`)
  const F = C.floors || {}
  if (F['floor-plain']) {
    lines.push('', 'What any package pays to be required (a one-line package):', '',
      '| figure | with an `exports` map | without |', '|---|---:|---:|',
      `| \`require(X)\` inside the process | ${msf(F['floor-exports-map'].importMs)} | ${msf(F['floor-plain'].importMs)} |`,
      `| resident memory added by the import | ${mib(F['floor-exports-map'].importRss)} | ${mib(F['floor-plain'].importRss)} |`)
  }
  return lines.join('\n')
}

module.exports = { runColdStart, coldGoals, coldTable }
