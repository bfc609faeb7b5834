'use strict'
// Retry: alone (`retry(action, options)`) and through a breaker (`execute(action, { retry })`,
// `wrap(fn, { retry })`): attempts, backoff, onRetry, retryOn, the caller's signal, a Lambda
// context's remaining time, RetryExhaustedError, and how attempts count in the breaker.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const {
  CircuitBreaker, CircuitBreakerOpenError, CircuitBreakerTimeoutError, RetryExhaustedError, retry,
} = require('..')
const { uniq, recordingLogger } = require('./helpers.js')

const mk = (extra = {}) => new CircuitBreaker({ name: uniq('retry'), logger: null, timeout: 0, minimumRequests: 1000, ...extra })
const quick = { initialMs: 1, maxMs: 1, jitter: 'none' }
/** An action failing `times` times, then resolving to 'ok'; records its arguments. */
function flaky(times) {
  const calls = []
  const action = async (signal, attempt) => {
    calls.push({ signal, attempt })
    if (calls.length <= times) throw new Error(`fail ${calls.length}`)
    return 'ok'
  }
  return { action, calls }
}

test('retry: retries counts retries after the first attempt; the action gets (signal, attempt)', async () => {
  const f = flaky(2)
  assert.equal(await retry(f.action, { retries: 2, backoff: quick }), 'ok')
  assert.deepEqual(f.calls.map((c) => c.attempt), [1, 2, 3])
  for (const c of f.calls) assert.ok(c.signal instanceof AbortSignal)

  const g = flaky(3)
  const e = await retry(g.action, { retries: 2, backoff: quick }).catch((x) => x)
  assert.equal(g.calls.length, 3)
  assert.ok(e instanceof RetryExhaustedError && e instanceof Error)
  assert.equal(e.name, 'RetryExhaustedError')
  assert.equal(e.attempts, 3)
  assert.deepEqual(e.errors.map((x) => x.message), ['fail 1', 'fail 2', 'fail 3'])
  assert.equal(e.cause, e.errors[2])
  assert.match(e.message, /3 attempts.*fail 3/)

  const h = flaky(1)
  await assert.rejects(retry(h.action, { retries: 0 }), (x) => x instanceof RetryExhaustedError && x.attempts === 1)
  assert.equal(h.calls.length, 1)
})

test('retry: the default is 3 retries; a sync throw is retried like a rejection', async () => {
  let n = 0
  const e = await retry(() => { n++; throw new Error('sync') }, { backoff: quick }).catch((x) => x)
  assert.equal(n, 4)
  assert.equal(e.attempts, 4)
})

test('retry: onRetry gets { attempt, error, delayMs } before each wait, and the wait is that long', async () => {
  const events = []
  const f = flaky(3)
  const t0 = performance.now()
  await retry(f.action, {
    retries: 3,
    backoff: { initialMs: 20, multiplier: 3, maxMs: 100, jitter: 'none' },
    onRetry: (ev) => events.push({ ...ev, error: ev.error.message, at: performance.now() - t0 }),
  })
  const took = performance.now() - t0
  assert.deepEqual(events.map(({ attempt, error, delayMs }) => ({ attempt, error, delayMs })), [
    { attempt: 1, error: 'fail 1', delayMs: 20 },
    { attempt: 2, error: 'fail 2', delayMs: 60 },
    { attempt: 3, error: 'fail 3', delayMs: 100 }, // 180 capped by maxMs
  ])
  assert.ok(took >= 175, `the waits took ${took} ms, expected at least 180 - timer slack`)
})

test('retry: full jitter spreads each wait uniformly in [0, cap]', async () => {
  const delays = []
  for (let i = 0; i < 40; i++) {
    await retry(flaky(1).action, { retries: 1, backoff: { initialMs: 4 }, onRetry: (ev) => delays.push(ev.delayMs) })
  }
  assert.ok(delays.every((d) => Number.isInteger(d) && d >= 0 && d <= 4), delays.join(','))
  assert.ok(new Set(delays).size >= 3, `40 jittered delays took ${new Set(delays).size} distinct values`)
})

test('retry: retryOn returning false ends the retries with that error, unchanged', async () => {
  const err = Object.assign(new Error('bad request'), { status: 400 })
  let n = 0
  const seen = []
  const e = await retry(() => { n++; throw err }, { retryOn: (x) => { seen.push(x); return x.status >= 500 }, backoff: quick }).catch((x) => x)
  assert.equal(e, err)
  assert.equal(n, 1)
  assert.deepEqual(seen, [err])
})

test('retry: an open circuit inside the action ends the retries at once', async () => {
  const b = mk()
  b.open()
  let n = 0
  const t0 = performance.now()
  const e = await retry(() => { n++; return b.execute(() => 'never') }, { retries: 5, backoff: { initialMs: 5_000 } }).catch((x) => x)
  assert.ok(e instanceof CircuitBreakerOpenError)
  assert.equal(n, 1)
  assert.ok(performance.now() - t0 < 2_000, 'no wait before giving up')
})

test('retry: aborting the caller signal during a wait rejects at once with its reason, and clears the timer', async () => {
  const ac = new AbortController()
  const reason = new Error('client went away')
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
  const before = timers()
  const t0 = performance.now()
  const p = retry(flaky(5).action, {
    signal: ac.signal,
    backoff: { initialMs: 60_000, jitter: 'none' },
    onRetry: () => setImmediate(() => ac.abort(reason)),
  })
  const e = await p.catch((x) => x)
  assert.equal(e, reason)
  assert.ok(performance.now() - t0 < 5_000, 'did not sleep the 60 s wait')
  assert.equal(timers(), before, 'the wait timer was cleared')
})

test('retry: an already-aborted signal runs no attempt; an abort mid-attempt rejects at once', async () => {
  let n = 0
  const reason = new Error('gone')
  await assert.rejects(retry(() => { n++ }, { signal: AbortSignal.abort(reason) }), (x) => x === reason)
  assert.equal(n, 0)

  const ac = new AbortController()
  const seen = []
  const p = retry((signal) => { seen.push(signal); return new Promise(() => {}) }, { signal: ac.signal })
  setImmediate(() => ac.abort(reason))
  await assert.rejects(p, (x) => x === reason)
  assert.equal(seen[0], ac.signal, 'the action got the caller signal')
})

test('retry: given a Lambda context, no wait starts that would end past its remaining time', async () => {
  // 1 s left: a 2 s wait would end past the deadline, so the retries end after one attempt.
  let n = 0
  const context = { getRemainingTimeInMillis: () => 1_000 }
  const t0 = performance.now()
  const e = await retry(() => { n++; throw new Error('x') }, { context, backoff: { initialMs: 2_000, jitter: 'none' } }).catch((x) => x)
  assert.equal(n, 1)
  assert.ok(e instanceof RetryExhaustedError)
  assert.equal(e.attempts, 1)
  assert.match(e.message, /no time left/)
  assert.ok(performance.now() - t0 < 1_000, 'gave up without waiting')

  // Plenty of time: the waits fit, every retry runs.
  let m = 0
  const roomy = { getRemainingTimeInMillis: () => 60_000 }
  await retry(() => { if (++m < 3) throw new Error('x'); return 'ok' }, { context: roomy, backoff: { initialMs: 10, jitter: 'none' } })
  assert.equal(m, 3)

  // The remaining time is read once, then counted down on a monotonic clock: waits that
  // together would pass the deadline stop the retries before it.
  let k = 0
  const tight = { getRemainingTimeInMillis: () => 400 }
  const e2 = await retry(() => { k++; throw new Error('x') }, { context: tight, retries: 10, backoff: { initialMs: 120, multiplier: 1, jitter: 'none' } }).catch((x) => x)
  assert.ok(e2 instanceof RetryExhaustedError)
  // Two 120 ms waits fit in 400 - 100 ms, a third does not (a loaded machine's late timers
  // may leave room for only one); re-reading 400 ms each time would run all 11 attempts.
  assert.ok(k === 3 || k === 2, `${k} attempts`)
})

test('retry: bad options are a TypeError or RangeError naming the option', async () => {
  const a = async () => 1
  await assert.rejects(retry(a, { retries: -1 }), (e) => e instanceof RangeError && /option retries/.test(e.message))
  await assert.rejects(retry(a, { retries: 1.5 }), (e) => e instanceof RangeError && /option retries/.test(e.message))
  await assert.rejects(retry(a, { backoff: { jitter: 'half' } }), (e) => e instanceof TypeError && /backoff\.jitter.*"half"/.test(e.message))
  await assert.rejects(retry(a, { backoff: { initialMs: 500, maxMs: 100 } }), (e) => e instanceof RangeError && /backoff\.maxMs/.test(e.message))
  await assert.rejects(retry(a, { backoff: { multiplier: 0.5 } }), (e) => e instanceof RangeError && /backoff\.multiplier/.test(e.message))
  await assert.rejects(retry(a, { maxRetries: 3 }), (e) => e instanceof TypeError && /maxRetries; use retries/.test(e.message))
  await assert.rejects(retry(a, { context: {} }), (e) => e instanceof TypeError && /option context/.test(e.message))
  await assert.rejects(retry('nope'), (e) => e instanceof TypeError && /needs a function/.test(e.message))
})

// ---- through a breaker ---------------------------------------------------------------------

test('execute({ retry }): every attempt counts in the breaker; the fallback answers once, after the last', async () => {
  const got = []
  const b = mk({ fallback: (err) => { got.push(err); return 'fallback' } })
  const f = flaky(10)
  assert.equal(await b.execute(f.action, { retry: { retries: 2, backoff: quick } }), 'fallback')
  assert.deepEqual(f.calls.map((c) => c.attempt), [1, 2, 3])
  const s = b.getStats()
  assert.equal(s.failureCount, 3)
  assert.equal(s.fallbackCount, 1)
  assert.equal(got.length, 1)
  assert.ok(got[0] instanceof RetryExhaustedError)
  assert.equal(got[0].attempts, 3)

  // A success after failures: no fallback, and the breaker saw 2 failures and 1 success.
  const c = mk({ fallback: () => 'fallback' })
  assert.equal(await c.execute(flaky(2).action, { retry: { retries: 2, backoff: quick } }), 'ok')
  assert.deepEqual([c.getStats().failureCount, c.getStats().successCount, c.getStats().fallbackCount], [2, 1, 0])
})

test('execute({ retry }): a failure that opens the circuit ends the retries at once with its CircuitBreakerOpenError', async () => {
  const log = recordingLogger()
  const b = mk({ consecutiveFailures: 1, logger: log })
  const opened = []
  b.on('open', (ev) => opened.push(ev))
  const f = flaky(10)
  const t0 = performance.now()
  const e = await b.execute(f.action, { retry: { retries: 5, backoff: { initialMs: 30_000 } } }).catch((x) => x)
  assert.ok(e instanceof CircuitBreakerOpenError, String(e))
  assert.equal(e.circuit, b.name)
  assert.ok(e.retryAfterMs > 0)
  assert.equal(f.calls.length, 1, 'no attempt ran once the circuit was open')
  assert.ok(performance.now() - t0 < 10_000, 'no sleep into a known outage')
  const s = b.getStats()
  assert.deepEqual([s.failureCount, s.rejectionCount, s.state], [1, 1, 'OPEN'])
  assert.equal(opened.length, 1)
  assert.equal(log.lines.filter((l) => /CLOSED -> OPEN/.test(l.msg)).length, 1, 'the transition is logged once')
})

test('execute({ retry }): an open circuit runs no attempt; its fallback answers once', async () => {
  const got = []
  const b = mk({ fallback: (err) => { got.push(err); return 'cached' } })
  b.open()
  let n = 0
  assert.equal(await b.execute(() => { n++ }, { retry: { retries: 3 } }), 'cached')
  assert.equal(n, 0)
  assert.equal(got.length, 1)
  assert.ok(got[0] instanceof CircuitBreakerOpenError)
  assert.deepEqual([b.getStats().rejectionCount, b.getStats().fallbackCount], [1, 1])
})

test('execute({ retry }): an ignored error (isFailure false) ends the retries unchanged, with no fallback', async () => {
  const decline = Object.assign(new Error('card declined'), { code: 'card_declined' })
  let fb = 0
  const b = mk({ isFailure: (e) => e.code !== 'card_declined', fallback: () => { fb++; return 'x' } })
  let n = 0
  const e = await b.execute(() => { n++; throw decline }, { retry: { retries: 3, backoff: quick } }).catch((x) => x)
  assert.equal(e, decline)
  assert.equal(n, 1)
  assert.equal(fb, 0)
  assert.deepEqual([b.getStats().ignoredCount, b.getStats().failureCount], [1, 0])
})

test('execute({ retry }): retryOn false ends the retries with the error; the fallback still answers a failure', async () => {
  const err = new Error('fatal')
  const got = []
  const b = mk({ fallback: (x) => { got.push(x); return 'fb' } })
  let n = 0
  assert.equal(await b.execute(() => { n++; throw err }, { retry: { retryOn: () => false } }), 'fb')
  assert.equal(n, 1)
  assert.deepEqual(got, [err])
  const c = mk()
  await assert.rejects(c.execute(() => { throw err }, { retry: { retryOn: () => false } }), (x) => x === err)
})

test('execute({ retry }): each attempt gets its own timeout and signal; timeouts are failures that are retried', async (t) => {
  // The breaker's timeout timer does not hold the process; the test holds it.
  const hold = setInterval(() => {}, 1000)
  t.after(() => clearInterval(hold))
  const b = mk({ timeout: 40 })
  const signals = []
  const e = await b.execute((signal, attempt) => {
    signals.push({ signal, attempt })
    return new Promise(() => {})
  }, { retry: { retries: 1, backoff: quick } }).catch((x) => x)
  assert.ok(e instanceof RetryExhaustedError, String(e))
  assert.ok(e.cause instanceof CircuitBreakerTimeoutError)
  assert.deepEqual(signals.map((s) => [s.attempt, s.signal.aborted]), [[1, true], [2, true]])
  assert.notEqual(signals[0].signal, signals[1].signal)
  assert.deepEqual([b.getStats().timeoutCount, b.getStats().failureCount], [2, 2])

  // A per-call timeout option applies to every attempt.
  const c = mk()
  const te = await c.execute(() => new Promise(() => {}), { timeout: 30, retry: { retries: 1, backoff: quick } }).catch((x) => x)
  assert.ok(te instanceof RetryExhaustedError && te.cause instanceof CircuitBreakerTimeoutError && te.cause.timeoutMs === 30)
})

test('execute({ retry }): the caller signal ends a wait at once with its reason; no fallback', async () => {
  let fb = 0
  const b = mk({ fallback: () => { fb++ } })
  const ac = new AbortController()
  const reason = new Error('cancelled')
  const t0 = performance.now()
  const p = b.execute(flaky(5).action, { signal: ac.signal, retry: { backoff: { initialMs: 60_000, jitter: 'none' }, onRetry: () => setImmediate(() => ac.abort(reason)) } })
  await assert.rejects(p, (x) => x === reason)
  assert.ok(performance.now() - t0 < 5_000)
  assert.equal(fb, 0)
})

test('execute({ retry }): bad retry options and promise actions reject (never throw)', async () => {
  const b = mk()
  let r
  assert.doesNotThrow(() => { r = b.execute(() => 1, { retry: 3 }) })
  await assert.rejects(r, (e) => e instanceof TypeError && /option retry must be an object/.test(e.message))
  await assert.rejects(b.execute(() => 1, { retry: { retries: -2 } }), (e) => e instanceof RangeError && /option retry\.retries/.test(e.message))
  await assert.rejects(b.execute(() => 1, { retry: { attempts: 3 } }), (e) => e instanceof TypeError && /retry\.attempts; use retries/.test(e.message))
  await assert.rejects(b.execute(Promise.resolve(1), { retry: {} }), (e) => e instanceof TypeError && /cannot be run again/.test(e.message))
  assert.equal(b.getStats().totalRequests, 0)
})

test('execute({ bypass, retry }): bypass wins: the action runs once, without the breaker and without retries', async () => {
  const b = mk()
  let n = 0
  await assert.rejects(b.execute(() => { n++; throw new Error('x') }, { bypass: true, retry: { retries: 3, backoff: quick } }), /x/)
  assert.equal(n, 1)
  assert.equal(b.getStats().totalRequests, 0)
})

test('wrap(fn, { retry }) retries through the breaker with `this` and the arguments', async () => {
  const b = mk()
  const client = {
    n: 0,
    async get(id) {
      this.n++
      if (this.n < 3) throw new Error('flaky')
      return `${id}:${this.n}`
    },
  }
  client.get = b.wrap(client.get, { retry: { retries: 3, backoff: quick } })
  assert.equal(await client.get('a'), 'a:3')
  assert.deepEqual([b.getStats().failureCount, b.getStats().successCount], [2, 1])
})

test('RetryExhaustedError is one class from CommonJS and ESM', async () => {
  const esm = await import('../esm.cjs')
  assert.equal(esm.RetryExhaustedError, RetryExhaustedError)
  assert.equal(esm.retry, retry)
  assert.equal(require('../lib/errors.js').RetryExhaustedError, RetryExhaustedError)
  const e = new RetryExhaustedError(2, [new Error('a'), new Error('b')])
  assert.ok(e instanceof esm.RetryExhaustedError)
  assert.equal(e.cause.message, 'b')
  assert.equal(Object.prototype.toString.call(e), '[object Error]')
})
