'use strict'
// Decorators (breakwater/decorators): a TypeScript fixture compiled with tsc and with esbuild
// (TypeScript 5 standard decorators), run under Node; both stacking orders.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const ROOT = path.join(__dirname, '..')
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
const ESBUILD = path.join(ROOT, 'node_modules', '.bin', 'esbuild')
const FIXTURE = path.join(__dirname, 'fixtures', 'decorators.ts')

let dir
before(() => {
  // An app directory with breakwater in its node_modules, as a user has it.
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'breakwater-decorators-'))
  fs.mkdirSync(path.join(dir, 'node_modules'))
  fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'breakwater'), 'dir')
  fs.copyFileSync(FIXTURE, path.join(dir, 'decorators.ts'))
})
after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
})

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: dir, encoding: 'utf8', timeout: 120_000 })
  assert.equal(r.status, 0, `${path.basename(cmd)} ${args.join(' ')} failed:\n${r.stdout}${r.stderr}`)
  return r.stdout
}

// What both compilations must print: see the comments on each method of the fixture.
const EXPECTED = {
  charge: 'open', // attempt 1 fails, attempt 2 fails and opens the circuit, the retry ends
  chargeAttempts: 2,
  chargeOther: 'open',
  chargeOtherAttempts: 0,
  chargeStats: [2, 2],
  refunds: ['exhausted:3', 'exhausted:3', 'open'], // two breaker calls (3 attempts each) open it
  refundAttempts: 6,
  refundStats: [2, 1],
  quote: 'fallback after exhausted:3',
  quoteStats: [3, 3, 1],
  lookup: 'l:k:3',
  ping: 'pong',
  pingBreaker: true,
}

test('compiled with tsc (TypeScript 5 standard decorators, --strict), the decorated class behaves as documented', { timeout: 120_000 }, () => {
  run(process.execPath, [TSC, '--strict', '--target', 'es2022', '--module', 'nodenext', '--moduleResolution', 'nodenext',
    '--types', 'node', '--typeRoots', path.join(ROOT, 'node_modules', '@types'), '--outDir', 'tsc-out', 'decorators.ts'])
  const out = run(process.execPath, ['tsc-out/decorators.js', 'tsc'])
  assert.deepEqual(JSON.parse(out), EXPECTED)
})

test('compiled with esbuild (ESM output), the decorated class behaves the same', { timeout: 120_000 }, () => {
  run(ESBUILD, ['decorators.ts', '--format=esm', '--platform=node', '--target=node20', '--outfile=esbuild-out/decorators.mjs', '--log-level=warning'])
  const js = fs.readFileSync(path.join(dir, 'esbuild-out', 'decorators.mjs'), 'utf8')
  assert.ok(!/@retry|@circuitBreaker/.test(js), 'esbuild lowered the decorators for Node 20')
  const out = run(process.execPath, ['esbuild-out/decorators.mjs', 'esbuild'])
  assert.deepEqual(JSON.parse(out), EXPECTED)
})

test('decorators refuse legacy (experimentalDecorators) use and bad options with a TypeError', () => {
  const { circuitBreaker, retry } = require('breakwater/decorators')
  assert.throws(() => circuitBreaker('legacy-deco')({}, 'method', {}), (e) => e instanceof TypeError && /experimentalDecorators/.test(e.message))
  assert.throws(() => retry({ retries: -1 }), (e) => e instanceof RangeError && /option retries/.test(e.message))
  assert.throws(() => circuitBreaker(42), (e) => e instanceof TypeError && /circuit name, breaker options or a CircuitBreaker/.test(e.message))
  assert.throws(() => retry()(function f() {}, { kind: 'field', name: 'f' }), (e) => e instanceof TypeError && /class methods/.test(e.message))
})
