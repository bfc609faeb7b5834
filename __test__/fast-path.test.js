'use strict'
// The fast path's handlers (lib/breaker.js): made by the first call that needs them, rebuilt
// per generation, and the two of a run of failures made at the first failure. Whatever order
// transitions, failures and successes come in, every call resolves with its own value or
// rejects with its own error, and every outcome is counted.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { CircuitBreaker } = require('..')
const { uniq, okN, deferred } = require('./helpers.js')

const plain = (extra) => new CircuitBreaker({ name: uniq('fast'), timeout: 0, failureThreshold: 1, minimumRequests: 1000, logger: null, ...extra })

test('a fast-path call that fails after a transition: the calls after it still resolve with their values', async () => {
  const b = plain()
  await okN(b, 20) // past the first call of the clock's tick, timed on the general path
  const d = deferred()
  const pending = b.execute(() => d.promise) // admitted on the fast path, in this generation
  b.open()
  b.close() // two transitions: a new generation, the handlers are dropped
  d.reject(new Error('late'))
  await assert.rejects(pending, /late/)
  // The next calls take the form for a run of failures, then successes end it.
  const values = []
  for (let i = 0; i < 40; i++) values.push(await b.execute(() => Promise.resolve(i)))
  assert.deepEqual(values, Array.from({ length: 40 }, (_, i) => i))
  const s = b.getStats()
  assert.equal(s.successCount, 60)
  assert.equal(s.failureCount, 1)
})

test('runs of failures and successes across transitions, with and without a timeout: every call answered and counted', async () => {
  for (const timeout of [0, 30_000]) {
    const b = plain({ timeout })
    let ok = 0
    let failed = 0
    for (let i = 0; i < 300; i++) {
      if (i % 50 === 25) {
        b.open()
        b.close()
      }
      const fails = (i >> 3) % 2 === 1
      try {
        const v = await b.execute(() => (fails ? Promise.reject(new Error(`e${i}`)) : Promise.resolve(i)))
        assert.equal(v, i)
        ok++
      } catch (e) {
        assert.equal(e.message, `e${i}`)
        failed++
      }
    }
    const s = b.getStats()
    assert.equal(s.successCount, ok)
    assert.equal(s.failureCount, failed)
    assert.equal(ok + failed, 300)
  }
})
