'use strict'
// A Rust panic becomes a JS error; the process lives on and the library keeps working.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const binding = require('../binding.js')
const { CircuitBreaker } = require('..')
const { uniq } = require('./helpers.js')

const panicForTest = binding.panicForTest

test('a Rust panic throws a JS Error and the process lives on', async () => {
  assert.equal(typeof panicForTest, 'function')
  assert.throws(() => panicForTest(), (e) => {
    assert.ok(e instanceof Error)
    assert.match(e.message, /panic/)
    return true
  })
  // again: the first panic did not poison anything
  assert.throws(() => panicForTest(), Error)
  const b = new CircuitBreaker({ name: uniq('panic'), logger: null, consecutiveFailures: 1 })
  assert.equal(await b.execute(() => 'still works'), 'still works')
  await b.execute(() => Promise.reject(new Error('x'))).catch(() => {})
  assert.equal(b.state, 'OPEN')
})

test('native calls with bad arguments throw JS errors, not crashes', () => {
  assert.throws(() => binding.stats(0xfffffff0))
  assert.throws(() => binding.settle(0xfffffff0, 0, 0))
  assert.throws(() => binding.attach('x'.repeat(10), { failureThreshold: 5 }))
})
