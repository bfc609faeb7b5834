'use strict'
// What a call counts as: success, failure (throw, reject, timeout), ignored (isFailure false),
// slow, rejected.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { CircuitBreaker, CircuitBreakerOpenError } = require('..')
const { uniq, sleep, fail, ok, failN, okN, deferred } = require('./helpers.js')

const mk = (extra = {}) => new CircuitBreaker({ name: uniq('counting'), logger: null, timeout: 0, minimumRequests: 1000, ...extra })

test('a resolved action is a success', async () => {
  const b = mk()
  await okN(b, 5)
  const s = b.getStats()
  assert.equal(s.successCount, 5)
  assert.equal(s.failureCount, 0)
  assert.equal(s.totalRequests, 5)
  assert.equal(s.window.successes, 5)
})

test('many successes on the fast path are all counted (batched counting loses nothing)', async () => {
  const b = mk()
  const N = 10_000
  const ps = []
  for (let i = 0; i < N; i++) ps.push(b.execute(() => i))
  await Promise.all(ps)
  assert.equal(b.getStats().successCount, N)
  assert.equal(b.getStats().window.successes, N)
})

test('a sync return value (not a promise) is a success', async () => {
  const b = mk()
  assert.equal(await b.execute(() => 42), 42)
  assert.equal(b.getStats().successCount, 1)
})

test('a rejection is a failure', async () => {
  const b = mk()
  await failN(b, 3)
  const s = b.getStats()
  assert.equal(s.failureCount, 3)
  assert.equal(s.window.failures, 3)
  assert.equal(s.consecutiveFailures, 3)
})

test('a synchronous throw is a failure and rejects execute (never throws synchronously)', async () => {
  const b = mk()
  const err = new Error('sync')
  let p
  assert.doesNotThrow(() => { p = b.execute(() => { throw err }) })
  await assert.rejects(p, (e) => e === err)
  assert.equal(b.getStats().failureCount, 1)
})

test('a rejection with a non-Error value is a failure and is passed through unchanged', async () => {
  const b = mk()
  await assert.rejects(b.execute(() => Promise.reject('plain string')), (e) => e === 'plain string')
  await assert.rejects(b.execute(() => Promise.reject(undefined)), (e) => e === undefined)
  assert.equal(b.getStats().failureCount, 2)
})

test('isFailure false: ignored — not counted, re-thrown unchanged, no fallback', async () => {
  let fallbackRuns = 0
  const decline = Object.assign(new Error('card declined'), { code: 'card_declined' })
  const b = mk({
    isFailure: (e) => e.code !== 'card_declined',
    fallback: () => { fallbackRuns++; return 'fb' },
    consecutiveFailures: 1,
  })
  for (let i = 0; i < 5; i++) {
    await assert.rejects(b.execute(() => Promise.reject(decline)), (e) => e === decline)
  }
  assert.equal(b.state, 'CLOSED')
  assert.equal(fallbackRuns, 0)
  const s = b.getStats()
  assert.equal(s.ignoredCount, 5)
  assert.equal(s.failureCount, 0)
  assert.equal(s.successCount, 0)
  assert.equal(s.window.calls, 0)
  assert.equal(s.totalRequests, 5, 'totalRequests includes ignored')
  // a real failure still counts and uses the fallback
  assert.equal(await b.execute(fail('outage')), 'fb')
  assert.equal(b.state, 'OPEN')
})

test('isFailure receives the error; sync throws are judged too', async () => {
  const seen = []
  const b = mk({ isFailure: (e) => { seen.push(e); return false } })
  const e1 = new Error('sync')
  await assert.rejects(b.execute(() => { throw e1 }), (e) => e === e1)
  assert.deepEqual(seen, [e1])
  assert.equal(b.getStats().ignoredCount, 1)
})

test('an ignored error does not break a run of consecutive failures', async () => {
  const b = mk({ isFailure: (e) => e.message !== 'ignore', consecutiveFailures: 3 })
  await failN(b, 2)
  await b.execute(fail('ignore')).catch(() => {})
  await failN(b, 1)
  assert.equal(b.state, 'OPEN')
})

test('isFailure that throws counts the error as a failure', async () => {
  const b = mk({ isFailure: () => { throw new Error('bad predicate') } })
  const err = new Error('real')
  await assert.rejects(b.execute(() => Promise.reject(err)), (e) => e === err)
  assert.equal(b.getStats().failureCount, 1)
})

test('an ignored error frees its half-open probe slot', async () => {
  const b = mk({ isFailure: (e) => e.message !== 'ignore', consecutiveFailures: 1, resetTimeout: 10_000 })
  await failN(b, 1)
  b.halfOpen()
  await assert.rejects(b.execute(fail('ignore')), /ignore/)
  assert.equal(b.state, 'HALF_OPEN', 'an ignored probe decides nothing')
  // the slot is free: the next call runs as a probe (not rejected) and closes the circuit
  assert.equal(await b.execute(ok('probe')), 'probe')
  assert.equal(b.state, 'CLOSED')
  assert.equal(b.getStats().rejectionCount, 0)
})

test('a timeout is a failure and counts in timeoutCount', async () => {
  const b = mk({ timeout: 30 })
  await b.execute(() => sleep(200)).catch(() => {})
  const s = b.getStats()
  assert.equal(s.failureCount, 1)
  assert.equal(s.timeoutCount, 1)
  assert.equal(s.successCount, 0)
})

test('slow calls count as slow and as success/failure', async () => {
  const b = mk({ slowCallDurationMs: 20 })
  await b.execute(() => sleep(40))
  await b.execute(() => sleep(40).then(() => { throw new Error('slow fail') })).catch(() => {})
  await b.execute(() => 1)
  const s = b.getStats()
  assert.equal(s.slowCallCount, 2)
  assert.equal(s.successCount, 2)
  assert.equal(s.failureCount, 1)
  assert.equal(s.window.slowCalls, 2)
  assert.ok(Math.abs(s.slowCallRate - 66.667) < 0.01, `slowCallRate ${s.slowCallRate}`)
})

test('rejected calls count in rejectionCount and totalRequests, not in the window', async () => {
  const b = mk({ consecutiveFailures: 1, resetTimeout: 10_000 })
  await failN(b, 1)
  for (let i = 0; i < 4; i++) await assert.rejects(b.execute(ok()), CircuitBreakerOpenError)
  const s = b.getStats()
  assert.equal(s.rejectionCount, 4)
  assert.equal(s.totalRequests, 5)
  assert.equal(s.window.calls, 1)
})

test('half-open rejections (slots taken) count as rejections', async () => {
  const b = mk({ consecutiveFailures: 1, resetTimeout: 10_000 })
  await failN(b, 1)
  b.halfOpen()
  const d = deferred()
  const probe = b.execute(() => d.promise)
  await assert.rejects(b.execute(ok()), CircuitBreakerOpenError)
  await assert.rejects(b.execute(ok()), CircuitBreakerOpenError)
  d.resolve()
  await probe
  assert.equal(b.getStats().rejectionCount, 2)
})

test('totalRequests = successes + failures + rejections + ignored', async () => {
  const b = mk({ isFailure: (e) => e.message !== 'ign', consecutiveFailures: 3, resetTimeout: 10_000 })
  await okN(b, 4)
  await b.execute(fail('ign')).catch(() => {})
  await failN(b, 3)
  await b.execute(ok()).catch(() => {})
  const s = b.getStats()
  assert.equal(s.successCount, 4)
  assert.equal(s.ignoredCount, 1)
  assert.equal(s.failureCount, 3)
  assert.equal(s.rejectionCount, 1)
  assert.equal(s.totalRequests, s.successCount + s.failureCount + s.rejectionCount + s.ignoredCount)
  assert.equal(s.totalRequests, 9)
})

test('failures counted on the fast path (within the failure budget) trip at exactly the same call as one by one', async () => {
  const { CircuitBreaker } = require('..')
  // time window: failures are batched in the lane while they certainly decide nothing
  for (const [successes, min, thr] of [[0, 10, 0.5], [100, 10, 0.5], [7, 5, 0.3], [30, 20, 0.25]]) {
    const b = new CircuitBreaker({ name: `count-budget-${successes}-${min}-${thr}-${process.pid}`, logger: null, timeout: 0, minimumRequests: min, failureThreshold: thr })
    for (let i = 0; i < successes; i++) await b.execute(() => 1)
    let failures = 0
    while (b.state === 'CLOSED' && failures < 10_000) {
      await b.execute(() => Promise.reject(new Error('x'))).catch(() => {})
      failures++
    }
    // the first moment failures/calls >= thr with calls >= min
    let expect = 1
    while (!((expect / (successes + expect)) >= thr && successes + expect >= min)) expect++
    assert.equal(failures, expect, `successes ${successes}, min ${min}, threshold ${thr}`)
    const s = b.getStats()
    assert.equal(s.failureCount, expect)
    assert.equal(s.window.failures, expect)
    assert.ok(s.lastFailureAt !== null && Math.abs(s.lastFailureAt - Date.now()) < 1_000)
  }
})

// After a failure, the fast path lets rejections pass through natively and counts them in a
// reaction of their own (see _makeHandlers in lib/breaker.js). Whatever form a call takes, the
// caller must see the same things.
test('runs of failures and successes: every outcome counted before the caller resumes, errors unchanged', async () => {
  const unhandled = []
  const onUnhandled = (r) => unhandled.push(r)
  process.on('unhandledRejection', onUnhandled)
  try {
    const b = mk({ isFailure: (e) => !(e && e.ignore) })
    const plain = mk()
    const pattern = 'FFFSFSSFFFIFSIIS'.repeat(40) // F failure, S success, I ignored
    for (const br of [b, plain]) {
      const want = { successCount: 0, failureCount: 0, ignoredCount: 0 }
      for (const k of pattern) {
        if (k === 'I' && br === plain) continue
        const err = k === 'I' ? Object.assign(new Error('declined'), { ignore: true }) : new Error('down')
        if (k === 'S') {
          assert.equal(await br.execute(async () => 7), 7)
          want.successCount++
        } else {
          const seen = await br.execute(() => Promise.reject(err)).then(() => assert.fail('resolved'), (e) => e)
          assert.equal(seen, err, 'the very same error object')
          if (k === 'F') want.failureCount++
          else want.ignoredCount++
        }
        // read in the caller's continuation: the outcome is already counted
        const s = br.getStats()
        assert.deepEqual({ successCount: s.successCount, failureCount: s.failureCount, ignoredCount: s.ignoredCount }, want)
      }
      assert.equal(br.getStats().state, 'CLOSED')
    }
    // sync throws and non-Error rejections after a failure take the same form
    const c = mk()
    await c.execute(() => Promise.reject(new Error('x'))).catch(() => {})
    await assert.rejects(c.execute(() => { throw new TypeError('sync') }), TypeError)
    assert.equal(await c.execute(() => Promise.reject(42)).catch((v) => v), 42)
    assert.equal(c.getStats().failureCount, 3)
    await new Promise((r) => setImmediate(r))
    assert.deepEqual(unhandled, [])
  } finally {
    process.off('unhandledRejection', onUnhandled)
  }
})

test('failures after failures still trip the circuit at the threshold, and a fallback still replaces them', async () => {
  const b = mk({ minimumRequests: 10, failureThreshold: 0.5 })
  for (let i = 0; i < 9; i++) await b.execute(() => Promise.reject(new Error('down'))).catch(() => {})
  assert.equal(b.state, 'CLOSED')
  await b.execute(() => Promise.reject(new Error('down'))).catch(() => {})
  assert.equal(b.state, 'OPEN')
  await assert.rejects(b.execute(async () => 1), CircuitBreakerOpenError)

  const f = mk({ fallback: (e) => `fallback:${e.message}` })
  for (let i = 0; i < 5; i++) assert.equal(await f.execute(() => Promise.reject(new Error('down'))), 'fallback:down')
  assert.equal(await f.execute(async () => 'ok'), 'ok')
  const s = f.getStats()
  assert.equal(s.failureCount, 5)
  assert.equal(s.fallbackCount, 5)
  assert.equal(s.successCount, 1)
})
