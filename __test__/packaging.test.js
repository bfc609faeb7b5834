'use strict'
// Packaging: the npm/ platform packages are in step with the root package, and breakwater
// installed from its packed tarballs (root + this machine's platform package, with npm
// picking the platform package through optionalDependencies) works in an empty directory
// with no Rust on PATH, from CommonJS, ESM and TypeScript (tsc --strict) consumers.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { stageInstall, hostPlatform } = require('../scripts/stage-install.js')

const ROOT = path.join(__dirname, '..')
const pkg = require('../package.json')
const BIN = pkg.napi.binaryName
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')

// napi-rs target triple -> platform id, os, cpu, libc
const TRIPLES = {
  'x86_64-unknown-linux-gnu': ['linux-x64-gnu', 'linux', 'x64', 'glibc'],
  'aarch64-unknown-linux-gnu': ['linux-arm64-gnu', 'linux', 'arm64', 'glibc'],
  'x86_64-unknown-linux-musl': ['linux-x64-musl', 'linux', 'x64', 'musl'],
  'aarch64-unknown-linux-musl': ['linux-arm64-musl', 'linux', 'arm64', 'musl'],
  'x86_64-apple-darwin': ['darwin-x64', 'darwin', 'x64'],
  'aarch64-apple-darwin': ['darwin-arm64', 'darwin', 'arm64'],
  'x86_64-pc-windows-msvc': ['win32-x64-msvc', 'win32', 'x64'],
}
const INSTALL_SCRIPTS = ['preinstall', 'install', 'postinstall', 'prepare']

test('npm/ holds one platform package per napi target, in step with the root package', () => {
  const dirs = fs.readdirSync(path.join(ROOT, 'npm')).sort()
  const expected = pkg.napi.targets.map((t) => {
    assert.ok(TRIPLES[t], `unexpected napi target ${t}`)
    return TRIPLES[t][0]
  }).sort()
  assert.deepEqual(dirs, expected)
  assert.equal(dirs.length, 7)
  for (const t of pkg.napi.targets) {
    const [id, os_, cpu, libc] = TRIPLES[t]
    const p = JSON.parse(fs.readFileSync(path.join(ROOT, 'npm', id, 'package.json'), 'utf8'))
    assert.equal(p.name, `${BIN}-${id}`)
    assert.equal(p.version, pkg.version, `${p.name} version`)
    assert.deepEqual(p.os, [os_], `${p.name} os`)
    assert.deepEqual(p.cpu, [cpu], `${p.name} cpu`)
    if (libc) assert.deepEqual(p.libc, [libc], `${p.name} libc`)
    else assert.equal(p.libc, undefined, `${p.name} libc`)
    assert.equal(p.main, `${BIN}.${id}.node`)
    assert.deepEqual(p.files, [p.main])
    assert.equal(p.license, pkg.license)
    for (const s of INSTALL_SCRIPTS) assert.equal(p.scripts && p.scripts[s], undefined, `${p.name} has a ${s} script`)
    assert.equal(pkg.optionalDependencies[p.name], pkg.version, `root optionalDependencies[${p.name}]`)
  }
  assert.deepEqual(Object.keys(pkg.optionalDependencies).sort(), expected.map((id) => `${BIN}-${id}`).sort())
  for (const s of INSTALL_SCRIPTS) assert.equal(pkg.scripts[s], undefined, `root package has a ${s} script`)
})

// ---- pack, install, consume --------------------------------------------------------------

let dir
let staged
let env // an environment whose PATH has node but no cargo / rustc / rustup

function noRustEnv() {
  const bin = path.join(dir, 'bin')
  fs.mkdirSync(bin)
  fs.symlinkSync(process.execPath, path.join(bin, 'node'))
  const rusty = (d) => ['cargo', 'rustc', 'rustup'].some((x) => fs.existsSync(path.join(d, x)))
  const keep = (process.env.PATH || '').split(path.delimiter).filter((d) => d && !rusty(d))
  const e = { ...process.env, PATH: [bin, ...keep].join(path.delimiter) }
  for (const k of Object.keys(e)) if (/^(CARGO|RUSTUP|RUSTC)/.test(k)) delete e[k]
  return e
}

function run(cmd, args, what) {
  const r = spawnSync(cmd, args, { cwd: staged.app, env, encoding: 'utf8', timeout: 60_000 })
  assert.equal(r.status, 0, `${what} failed (${r.status} ${r.signal || ''}):\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'breakwater-packaging-'))
  env = noRustEnv()
  staged = stageInstall(dir, { env })
})
after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
})

test('the environment has no Rust toolchain', () => {
  for (const tool of ['cargo', 'rustc']) {
    const r = spawnSync(tool, ['--version'], { env, encoding: 'utf8' })
    assert.equal(r.error && r.error.code, 'ENOENT', `${tool} is reachable on PATH: ${r.stdout}`)
  }
})

test('the packed tarballs hold the entry points and the binary, nothing else', () => {
  const files = staged.packs.rootFiles
  for (const f of ['package.json', 'index.js', 'esm.cjs', 'index.d.ts', 'binding.js', 'binding.d.ts', 'lib/shared.js']) {
    assert.ok(files.includes(f), `root tarball lacks ${f}: ${files.join(' ')}`)
  }
  assert.deepEqual(files.filter((f) => /\.node$|^src\/|^crates\/|^__test__\/|^target\//.test(f)), [])
  const host = staged.packs.platforms[hostPlatform()]
  assert.ok(host, `no platform package packed for ${hostPlatform()}`)
  assert.ok(!host.stale, `the packed binary is older than the Rust sources: ${host.source}`)
  assert.deepEqual(host.files.filter((f) => f !== 'README.md').sort(), [`${BIN}.${hostPlatform()}.node`, 'package.json'])
})

test('npm installed the root package and exactly the platform package of this machine', () => {
  assert.deepEqual(staged.installed.sort(), [BIN, `${BIN}-${hostPlatform()}`].sort())
  const lock = JSON.parse(fs.readFileSync(path.join(staged.app, 'package-lock.json'), 'utf8'))
  const entry = lock.packages[`node_modules/${BIN}-${hostPlatform()}`]
  assert.equal(entry.optional, true, 'the platform package came in as an optional dependency')
  for (const name of staged.installed) {
    const p = JSON.parse(fs.readFileSync(path.join(staged.app, 'node_modules', name, 'package.json'), 'utf8'))
    for (const s of INSTALL_SCRIPTS) assert.equal(p.scripts && p.scripts[s], undefined, `${name} has a ${s} script`)
  }
})

test('a CommonJS consumer works', () => {
  fs.writeFileSync(path.join(staged.app, 'consumer.cjs'), `
const { CircuitBreaker, CircuitBreakerOpenError, getAllCircuitBreakerStats } = require('breakwater')
const b = new CircuitBreaker({ name: 'cjs', logger: null, consecutiveFailures: 1, timeout: 0 })
;(async () => {
  const v = await b.execute(() => 'ok')
  await b.execute(() => Promise.reject(new Error('x'))).catch(() => {})
  const e = await b.execute(() => 1).catch((err) => err)
  const binary = Object.keys(require.cache).find((f) => f.endsWith('.node'))
  console.log(JSON.stringify({ v, state: b.state, open: e instanceof CircuitBreakerOpenError, stats: getAllCircuitBreakerStats().cjs.totalRequests, binary }))
})()
`)
  const out = JSON.parse(run('node', ['consumer.cjs'], 'CJS consumer'))
  assert.deepEqual({ ...out, binary: undefined }, { v: 'ok', state: 'OPEN', open: true, stats: 3, binary: undefined })
  assert.equal(out.binary, fs.realpathSync(path.join(staged.app, 'node_modules', `${BIN}-${hostPlatform()}`, `${BIN}.${hostPlatform()}.node`)))
})

// The binary is looked up in the directories `require` would search, in its order, then by
// `require` itself: a nested platform package (npm nests one when the flat slot holds another
// version) wins over a flat one, and one only on NODE_PATH (a layer) is still found.
test('the platform package is found where require would find it: nested before flat, and on NODE_PATH', () => {
  const id = hostPlatform()
  const plat = `${BIN}-${id}`
  const installed = path.join(staged.app, 'node_modules')
  const layout = (name, dirs) => {
    const root = path.join(dir, 'layouts', name)
    for (const [where, what] of dirs) {
      const to = path.join(root, where)
      fs.mkdirSync(path.dirname(to), { recursive: true })
      fs.cpSync(path.join(installed, what), to, { recursive: true })
    }
    return root
  }
  const code = `const { CircuitBreaker } = require('${BIN}'); const b = new CircuitBreaker({ name: 'layout', logger: null });
    b.execute(() => 1).then((v) => console.log(JSON.stringify({ v, binary: Object.keys(require.cache).find((f) => f.endsWith('.node')) })))`
  const load = (cwd, extraEnv = {}) => {
    const r = spawnSync('node', ['-e', code], { cwd, env: { ...env, ...extraEnv }, encoding: 'utf8', timeout: 30_000 })
    assert.equal(r.status, 0, r.stderr)
    return JSON.parse(r.stdout)
  }
  // two copies of the same binary: which one loaded is told by its path
  const nested = layout('nested', [[`node_modules/${BIN}`, BIN], [`node_modules/${BIN}/node_modules/${plat}`, plat], [`node_modules/${plat}`, plat]])
  assert.deepEqual(load(nested), { v: 1, binary: fs.realpathSync(path.join(nested, 'node_modules', BIN, 'node_modules', plat, `${BIN}.${id}.node`)) })
  const flat = layout('flat', [[`node_modules/${BIN}`, BIN], [`node_modules/${plat}`, plat]])
  assert.deepEqual(load(flat), { v: 1, binary: fs.realpathSync(path.join(flat, 'node_modules', plat, `${BIN}.${id}.node`)) })
  const layer = layout('layer', [[`node_modules/${BIN}`, BIN], [`opt/nodejs/node_modules/${plat}`, plat]])
  const fromLayer = load(layer, { NODE_PATH: path.join(layer, 'opt', 'nodejs', 'node_modules') })
  assert.deepEqual(fromLayer, { v: 1, binary: fs.realpathSync(path.join(layer, 'opt', 'nodejs', 'node_modules', plat, `${BIN}.${id}.node`)) })
})

// Issue 16 (cold start): the import reads one file of the package (the bundled entry, see
// scripts/bundle.js) and opens the binary only when something needs it; the modules loaded
// later from their own files (retry, decorators) share the entry's classes and registry.
test('the import reads one file and no binary; later modules share its classes', () => {
  fs.writeFileSync(path.join(staged.app, 'consumer-load.cjs'), `
const path = require('node:path')
const Module = require('node:module')
const rel = (f) => path.relative(path.join(__dirname, 'node_modules'), f).split(path.sep).join('/')
// the files Node reads and compiles (or opens, for a binary) from here on
let read = []
for (const ext of ['.js', '.node']) {
  const real = Module._extensions[ext]
  Module._extensions[ext] = function (m, f) { read.push(rel(f)); return real.call(this, m, f) }
}
const fresh = () => { const r = read; read = []; return r }
const bw = require('breakwater')
const atImport = fresh()
const b = new bw.CircuitBreaker({ name: 'load', logger: null })
const atFirstBreaker = fresh()
;(async () => {
  await b.execute(async () => 1)
  const e = await bw.retry(() => Promise.reject(new Error('x')), { retries: 1, backoff: { initialMs: 1 } }).catch((x) => x)
  const { circuitBreaker } = require('breakwater/decorators')
  const guarded = circuitBreaker(b)(async () => 2, { kind: 'method', name: 'm' })
  await guarded()
  console.log(JSON.stringify({ atImport, atFirstBreaker, exhausted: e instanceof bw.RetryExhaustedError, calls: bw.getAllCircuitBreakerStats().load.totalRequests, same: bw.getCircuitBreaker('load') === b }))
})()
`)
  const { atImport, atFirstBreaker, ...rest } = JSON.parse(run('node', ['consumer-load.cjs'], 'load consumer'))
  assert.deepEqual(atImport, [`${BIN}/index.js`])
  assert.deepEqual(atFirstBreaker, [`${BIN}-${hostPlatform()}/${BIN}.${hostPlatform()}.node`])
  assert.deepEqual(rest, { exhausted: true, calls: 2, same: true })
})

test('the entry shares its classes with a deep entry loaded before it', () => {
  fs.writeFileSync(path.join(staged.app, 'consumer-deep.cjs'), `
const { circuitBreaker } = require('breakwater/decorators')
const { CircuitBreaker, getAllCircuitBreakerStats } = require('breakwater')
const b = new CircuitBreaker({ name: 'deep', logger: null })
circuitBreaker(b)(async () => 1, { kind: 'method', name: 'm' })().then(() => console.log(JSON.stringify({ calls: getAllCircuitBreakerStats().deep.totalRequests })))
`)
  assert.deepEqual(JSON.parse(run('node', ['consumer-deep.cjs'], 'deep-entry consumer')), { calls: 1 })
})

test('an ESM consumer works (named and default imports, one set of classes)', () => {
  fs.writeFileSync(path.join(staged.app, 'consumer.mjs'), `
import { CircuitBreaker, CircuitState, CircuitBreakerTimeoutError, emitEmf } from 'breakwater'
import breakwater from 'breakwater'
import { createRequire } from 'node:module'
const cjs = createRequire(import.meta.url)('breakwater')
const b = new CircuitBreaker({ name: 'esm', logger: null, timeout: 20 })
// the call never settles and breakwater's timeout timer does not hold the process: hold it
const hold = setInterval(() => {}, 1000)
const e = await b.execute(() => new Promise(() => {})).catch((err) => err)
clearInterval(hold)
const lines = []
emitEmf({ namespace: 'Test', write: (l) => lines.push(l) })
console.log(JSON.stringify({
  same: breakwater.CircuitBreaker === CircuitBreaker && cjs.CircuitBreaker === CircuitBreaker,
  timeout: e instanceof CircuitBreakerTimeoutError, closed: b.state === CircuitState.CLOSED, emf: lines.length > 0,
}))
`)
  assert.deepEqual(JSON.parse(run('node', ['consumer.mjs'], 'ESM consumer')), { same: true, timeout: true, closed: true, emf: true })
})

test('a TypeScript consumer compiles with tsc --strict and runs', { skip: !fs.existsSync(TSC) && 'typescript not installed' }, () => {
  fs.writeFileSync(path.join(staged.app, 'consumer.ts'), `
import { CircuitBreaker, CircuitBreakerOpenError, createExternalServiceCircuitBreaker, type CircuitBreakerStats } from 'breakwater'

interface Forecast { temp: number | null; stale: boolean }
const weather = createExternalServiceCircuitBreaker<Forecast>('ts-weather', async () => ({ temp: null, stale: true }), { logger: null })
const strict = new CircuitBreaker({ name: 'ts-strict', logger: null, consecutiveFailures: 1, timeout: 0 })

async function main(): Promise<void> {
  const f: Forecast = await weather.execute(async (signal: AbortSignal) => { if (signal.aborted) throw new Error('aborted'); return { temp: 21, stale: false } })
  await strict.execute(async () => { throw new Error('down') }).catch(() => undefined)
  const err: unknown = await strict.execute(() => 1).catch((e: unknown) => e)
  const stats: CircuitBreakerStats = strict.getStats()
  const retry: number | null = err instanceof CircuitBreakerOpenError ? err.retryAfterMs : null
  console.log(JSON.stringify({ temp: f.temp, state: stats.state, retry: retry !== null && retry > 0 }))
}
void main()
`)
  fs.writeFileSync(path.join(staged.app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', outDir: 'out',
      types: ['node'], typeRoots: [path.join(ROOT, 'node_modules', '@types')], skipLibCheck: false,
    },
    files: ['consumer.ts'],
  }))
  run('node', [TSC, '-p', 'tsconfig.json'], 'tsc --strict')
  assert.deepEqual(JSON.parse(run('node', ['out/consumer.js'], 'compiled TS consumer')), { temp: 21, state: 'OPEN', retry: true })
})
