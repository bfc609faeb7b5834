'use strict'
// resetBackoff: the open period grows after each failed probe (100 → 200 → 400, capped at
// maxMs), jitter spreads it without passing maxMs, and closing resets it. It lives in the
// shared circuit, so every instance and thread sees the same nextAttemptAt.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { Worker } = require('node:worker_threads')
const { CircuitBreaker } = require('..')
const { uniq, sleep } = require('./helpers.js')

const mk = (extra) => new CircuitBreaker({ name: uniq('backoff'), logger: null, timeout: 0, consecutiveFailures: 1, resetTimeout: 100, ...extra })
const boom = () => Promise.reject(new Error('down'))

/** The open period in force: nextAttemptAt - stateChangedAt (both stamped by the same transition). */
function period(b) {
  const s = b.getStats()
  assert.equal(s.state, 'OPEN')
  return s.nextAttemptAt - s.stateChangedAt
}

/** A failed probe: half-open by hand (no waiting), then a failing call. */
async function failProbe(b) {
  b.halfOpen()
  await b.execute(boom).catch(() => {})
}

test('each failed probe doubles the open period up to maxMs; closing resets it', async () => {
  const b = mk({ resetBackoff: { maxMs: 400 } })
  await b.execute(boom).catch(() => {})
  const seen = [period(b)]
  for (let i = 0; i < 4; i++) {
    await failProbe(b)
    seen.push(period(b))
  }
  assert.deepEqual(seen, [100, 200, 400, 400, 400])
  b.halfOpen()
  await b.execute(() => 'probe')
  assert.equal(b.state, 'CLOSED')
  await b.execute(boom).catch(() => {})
  assert.equal(period(b), 100, 'closing resets the period to resetTimeout')
})

test('the grown period is what the circuit waits: no probe before it, a probe after it', async () => {
  const b = mk({ resetBackoff: { multiplier: 3 } })
  await b.execute(boom).catch(() => {})
  await failProbe(b)
  assert.equal(period(b), 300)
  await sleep(150)
  assert.equal(b.state, 'OPEN', 'half-opened after resetTimeout instead of the backed-off period')
  await sleep(250)
  assert.equal(b.state, 'HALF_OPEN')
})

test('without resetBackoff every open period is resetTimeout', async () => {
  const b = mk()
  await b.execute(boom).catch(() => {})
  await failProbe(b)
  await failProbe(b)
  assert.equal(period(b), 100)
})

test('jitter spreads each period by up to that fraction, never past maxMs', async () => {
  const b = mk({ resetTimeout: 1_000, resetBackoff: { multiplier: 2, maxMs: 4_000, jitter: 0.5 } })
  const periods = []
  for (let round = 0; round < 15; round++) {
    b.close()
    await b.execute(boom).catch(() => {})
    const first = period(b)
    assert.ok(first >= 500 && first <= 1_500, `first period ${first} outside 1000 ± 50%`)
    await failProbe(b)
    const second = period(b)
    assert.ok(second >= 1_000 && second <= 3_000, `second period ${second} outside 2000 ± 50%`)
    await failProbe(b)
    await failProbe(b)
    const capped = period(b)
    assert.ok(capped >= 2_000 && capped <= 4_000, `capped period ${capped} outside [2000, 4000]`)
    periods.push(first, second, capped)
  }
  assert.ok(new Set(periods).size > 10, 'jitter gave (nearly) the same period every time')
})

test('every instance and thread of the circuit sees the same nextAttemptAt', async () => {
  const options = { name: uniq('backoff-shared'), logger: null, timeout: 0, consecutiveFailures: 1, resetTimeout: 1_000, resetBackoff: { multiplier: 2, jitter: 0.3 } }
  const a = new CircuitBreaker(options)
  const b = new CircuitBreaker(options)
  await a.execute(boom).catch(() => {})
  await failProbe(a)
  await failProbe(a)
  const at = a.getStats().nextAttemptAt
  assert.equal(b.getStats().nextAttemptAt, at)
  assert.equal(a.toJSON().nextAttemptAt, at, 'the snapshot carries it')
  const code = `
    const { workerData, parentPort } = require('node:worker_threads')
    const { getCircuitBreaker } = require(workerData.root)
    parentPort.postMessage(getCircuitBreaker(workerData.name).getStats().nextAttemptAt)
  `
  const w = new Worker(code, { eval: true, workerData: { root: path.join(__dirname, '..'), name: options.name } })
  // listened for now: a worker that posts and ends at once can emit 'exit' in the same turn as
  // its last message, before an `await` on the message resumes
  const exited = new Promise((r) => w.once('exit', r))
  assert.equal(await new Promise((r) => w.once('message', r)), at)
  await exited
})

test('resetBackoff is validated, and is part of the circuit\'s identity', () => {
  const name = uniq('backoff-opts')
  const cases = [
    [5, TypeError, /resetBackoff must be an object/],
    [{ multiplier: 0.5 }, RangeError, /resetBackoff\.multiplier.*0\.5/],
    [{ multiplier: 'x' }, TypeError, /resetBackoff\.multiplier.*"x"/],
    [{ jitter: 1.5 }, RangeError, /resetBackoff\.jitter.*1\.5/],
    [{ maxMs: 50 }, RangeError, /resetBackoff\.maxMs must be at least resetTimeout \(100 ms\), got 50/],
    [{ maxMs: 1.5 }, RangeError, /resetBackoff\.maxMs.*1\.5/],
    [{ factor: 2 }, TypeError, /unknown option resetBackoff\.factor/],
  ]
  for (const [v, type, re] of cases) {
    assert.throws(() => new CircuitBreaker({ name, resetTimeout: 100, resetBackoff: v }), (e) => e instanceof type && re.test(e.message), JSON.stringify(v))
  }
  const b = new CircuitBreaker({ name, logger: null, resetTimeout: 100, resetBackoff: {} })
  // the defaults: multiplier 2, maxMs 10 × resetTimeout, jitter 0
  assert.throws(() => new CircuitBreaker({ name, resetTimeout: 100, resetBackoff: { maxMs: 2000 } }), /resetBackoff = \{ multiplier: 2, maxMs: 1000, jitter: 0 \}/)
  assert.throws(() => new CircuitBreaker({ name, resetTimeout: 100 }), /resetBackoff/)
  assert.ok(new CircuitBreaker({ name, logger: null, resetTimeout: 100, resetBackoff: { multiplier: 2, maxMs: 1000, jitter: 0 } }))
  b.dispose()
})

test('configure({ resetBackoff }) sets it for breakers created afterwards; maxMs follows each one\'s resetTimeout', async () => {
  const { configure } = require('..')
  const { resetConfiguration } = require('../lib/options.js')
  configure({ resetBackoff: { multiplier: 3 } })
  try {
    const b = mk({ resetTimeout: 100 })
    await b.execute(boom).catch(() => {})
    for (let i = 0; i < 4; i++) await failProbe(b)
    // 100 → 300 → 900 → 1000 (10 × resetTimeout) → 1000
    assert.equal(period(b), 1_000)
    const off = mk({ resetTimeout: 100, resetBackoff: null })
    await off.execute(boom).catch(() => {})
    await failProbe(off)
    assert.equal(period(off), 100, 'resetBackoff: null turns a configured default off')
  } finally {
    resetConfiguration()
  }
})
