'use strict'
// ESM and CJS entries share one set of classes and one registry.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { pathToFileURL } = require('node:url')
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const cjs = require('..')
const { uniq } = require('./helpers.js')

const ROOT = path.join(__dirname, '..')
let linkDir

/** Makes `breakwater` resolvable by name from a temp dir (a node_modules symlink to the repo). */
function packageDir() {
  if (linkDir) return linkDir
  linkDir = fs.mkdtempSync(path.join(os.tmpdir(), 'breakwater-esm-'))
  fs.mkdirSync(path.join(linkDir, 'node_modules'))
  fs.symlinkSync(ROOT, path.join(linkDir, 'node_modules', 'breakwater'), 'dir')
  fs.copyFileSync(path.join(__dirname, 'fixtures', 'esm-entry.mjs'), path.join(linkDir, 'esm-entry.mjs'))
  return linkDir
}

test.after(() => {
  if (linkDir) fs.rmSync(linkDir, { recursive: true, force: true })
})

test('the ESM entry (imported by package name) exports the same objects as the CJS entry', async () => {
  const esm = await import(pathToFileURL(path.join(packageDir(), 'esm-entry.mjs')).href)
  assert.equal(esm.CircuitBreaker, cjs.CircuitBreaker)
  assert.equal(esm.CircuitBreakerOpenError, cjs.CircuitBreakerOpenError)
  assert.equal(esm.CircuitBreakerTimeoutError, cjs.CircuitBreakerTimeoutError)
  assert.equal(esm.CircuitState, cjs.CircuitState)
  assert.equal(esm.getCircuitBreaker, cjs.getCircuitBreaker)
  assert.equal(esm.createExternalServiceCircuitBreaker, cjs.createExternalServiceCircuitBreaker)
  assert.equal(esm.breakwaterDefault.CircuitBreaker, cjs.CircuitBreaker)
})

test('instanceof works across ESM and CJS, and both see one registry', async () => {
  const esm = await import(pathToFileURL(path.join(packageDir(), 'esm-entry.mjs')).href)
  const name = uniq('esm-cjs')
  const b = esm.makeOpen(name)
  assert.ok(b instanceof cjs.CircuitBreaker)
  assert.equal(cjs.getCircuitBreaker(name), b)
  assert.equal(cjs.getAllCircuitBreakerStats()[name].state, 'OPEN')
  const e = await esm.rejectionOf(name)
  assert.ok(e instanceof cjs.CircuitBreakerOpenError)
  assert.ok(e instanceof esm.CircuitBreakerOpenError)
  const viaCjs = await cjs.getCircuitBreaker(name).execute(() => 1).catch((x) => x)
  assert.ok(viaCjs instanceof esm.CircuitBreakerOpenError)
  // a CJS breaker of the same name attaches to the same circuit
  const twin = new cjs.CircuitBreaker({ name, logger: null })
  assert.equal(twin.state, 'OPEN')
})

test('the ESM entry (esm.cjs) imported by path exports every name of the CJS entry, and the same objects', async () => {
  const esm = await import(pathToFileURL(path.join(ROOT, 'esm.cjs')).href)
  assert.equal(esm.CircuitBreaker, cjs.CircuitBreaker)
  assert.equal(esm.default, cjs)
  for (const k of Object.keys(cjs)) assert.ok(k in esm, `ESM entry lacks named export ${k}`)
})

test('a pure-ESM program can use the package end to end', () => {
  const dir = packageDir()
  const file = path.join(dir, 'main.mjs')
  fs.writeFileSync(file, `
    import { CircuitBreaker, CircuitBreakerOpenError, CircuitState } from 'breakwater'
    const { CircuitBreakerOpenError: CjsOpen } = (await import('node:module')).createRequire(import.meta.url)('breakwater')
    const b = new CircuitBreaker({ name: 'esm-main', logger: null, consecutiveFailures: 1 })
    await b.execute(() => Promise.reject(new Error('x'))).catch(() => {})
    const e = await b.execute(() => 1).catch((x) => x)
    console.log(JSON.stringify({ state: b.state, open: CircuitState.OPEN, esm: e instanceof CircuitBreakerOpenError, cjs: e instanceof CjsOpen }))
  `)
  const out = execFileSync(process.execPath, [file], { encoding: 'utf8', timeout: 10_000 })
  assert.deepEqual(JSON.parse(out), { state: 'OPEN', open: 'OPEN', esm: true, cjs: true })
})

test('importing the package as ESM reads no ES module file (on Node 20 the first one a process reads loads fs/promises, readline and the fs watchers)', () => {
  const dir = packageDir()
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', `
    const before = new Set(process.moduleLoadList)
    const { CircuitBreaker } = await import('breakwater')
    const added = process.moduleLoadList.filter((m) => !before.has(m))
    console.log(JSON.stringify({ ctor: typeof CircuitBreaker, added }))
  `], { cwd: dir, encoding: 'utf8', timeout: 10_000 })
  const { ctor, added } = JSON.parse(out)
  assert.equal(ctor, 'function')
  for (const m of ['NativeModule internal/fs/promises', 'NativeModule internal/readline/interface']) assert.ok(!added.includes(m), `${m} was loaded: ${added.join(', ')}`)
})
