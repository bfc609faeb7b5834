'use strict'
// When no native binary matches, the error says what was detected, which package would have
// matched, and how to install it.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { explainLoadError } = require('../lib/native.js')
const { name, version } = require('../package.json')

test('the no-binary error names the platform, the package that would match and how to install it', () => {
  const cause = new Error('Cannot find native binding. npm has a bug related to optional dependencies')
  const e = explainLoadError(cause)
  assert.equal(e.code, 'BREAKWATER_NO_NATIVE_BINARY')
  assert.equal(e.cause, cause)
  const libc = process.platform === 'linux' ? (process.report.getReport().header.glibcVersionRuntime ? 'gnu' : 'musl') : null
  const id = process.platform === 'linux' ? `linux-${process.arch}-${libc}` : process.platform === 'win32' ? `win32-${process.arch}-msvc` : `${process.platform}-${process.arch}`
  assert.equal(e.platform, id)
  assert.equal(e.package, `${name}-${id}`)
  assert.match(e.message, new RegExp(`detected: ${process.platform} ${process.arch}`))
  assert.match(e.message, new RegExp(`${name}-${id}@${version.replace(/\./g, '\\.')}`))
  assert.match(e.message, /npm install/)
})

test('the binary loads by its exact path, without the generated loader; the environment overrides still go through it', () => {
  const pkg = require('../package.json')
  const { loaderNames } = require('../lib/native.js')
  assert.deepEqual(loaderNames, { PACKAGE: pkg.name, BINARY: pkg.napi.binaryName })
  const { execFileSync } = require('node:child_process')
  const path = require('node:path')
  const code = `const bw = require('.'); new bw.CircuitBreaker({ name: 'loader', logger: null });
    console.log(JSON.stringify(Object.keys(require.cache).map((f) => require('path').basename(f)).filter((f) => f.endsWith('.node') || f === 'binding.js')))`
  const cwd = path.join(__dirname, '..')
  const env = { ...process.env }
  delete env.NAPI_RS_NATIVE_LIBRARY_PATH
  const plain = JSON.parse(execFileSync(process.execPath, ['-e', code], { cwd, env, encoding: 'utf8' }))
  assert.equal(plain.length, 1)
  assert.match(plain[0], /\.node$/)
  const viaOverride = JSON.parse(execFileSync(process.execPath, ['-e', code], { cwd, env: { ...env, NAPI_RS_NATIVE_LIBRARY_PATH: path.join(cwd, plain[0]) }, encoding: 'utf8' }))
  assert.deepEqual(viaOverride.sort(), ['binding.js', plain[0]].sort())
})
