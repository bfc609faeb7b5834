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
