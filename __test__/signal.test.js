'use strict'
// execute(action, { signal }): the caller's AbortSignal cancels a call, and wrap(fn,
// { passSignal: true }) hands the call's signal to a wrapped function.
const test = require('node:test')
const assert = require('node:assert/strict')
const { getEventListeners } = require('node:events')
const { CircuitBreaker, CircuitBreakerTimeoutError } = require('..')
const { uniq, sleep, deferred } = require('./helpers.js')

const mk = (extra = {}) => new CircuitBreaker({ name: uniq('signal'), logger: null, timeout: 0, ...extra })
const hang = () => new Promise(() => {})
const listeners = (signal) => getEventListeners(signal, 'abort').length
// The breaker's deadline timers are unref'd: this keeps the event loop alive while calls wait for them.
const keepAlive = setInterval(() => {}, 1000)
test.after(() => clearInterval(keepAlive))

test('aborting the caller signal rejects at once with its reason, even if the action ignores its signal', async () => {
  let fallbacks = 0
  const b = mk({ timeout: 10_000, fallback: () => { fallbacks++; return 'fallback' } })
  const ac = new AbortController()
  const late = deferred()
  let actionSignal = null
  const t0 = performance.now()
  const p = b.execute((signal) => { actionSignal = signal; return late.promise }, { signal: ac.signal })
  setTimeout(() => ac.abort(new Error('client went away')), 30)
  await assert.rejects(p, { message: 'client went away' })
  assert.ok(performance.now() - t0 < 1000, 'rejected long after the abort')
  assert.equal(actionSignal.aborted, true, "the action's signal was not aborted")
  assert.equal(actionSignal.reason.message, 'client went away')
  // Neither success nor failure, and no fallback; the late outcome changes nothing.
  late.resolve('too late')
  await sleep(10)
  const s = b.getStats()
  assert.deepEqual([s.ignoredCount, s.successCount, s.failureCount, s.totalRequests], [1, 0, 0, 1])
  assert.equal(fallbacks, 0)
  assert.equal(listeners(ac.signal), 0, 'the listener stayed on the caller signal')
})

test('an already-aborted signal rejects without running the action, counts nothing, runs no fallback', async () => {
  let fallbacks = 0
  const b = mk({ fallback: () => { fallbacks++; return 'fallback' } })
  let ran = false
  const reason = new Error('budget spent')
  await assert.rejects(b.execute(() => { ran = true }, { signal: AbortSignal.abort(reason) }), (e) => e === reason)
  assert.equal(ran, false)
  // OPEN: the caller's cancellation still wins over the open-circuit answer.
  b.open()
  await assert.rejects(b.execute(() => { ran = true }, { signal: AbortSignal.abort(reason) }), (e) => e === reason)
  assert.equal(ran, false)
  assert.equal(fallbacks, 0)
  assert.equal(b.getStats().totalRequests, 0)
  // An already-created promise is marked handled (no unhandled rejection) and not awaited.
  await assert.rejects(b.execute(Promise.reject(new Error('x')), { signal: AbortSignal.abort(reason) }), (e) => e === reason)
})

test('every action gets a live signal with options.signal, whatever it declares and with no timeout', async () => {
  const b = mk({ timeout: 0 })
  const ac = new AbortController()
  let got = null
  const p = b.execute((...args) => { got = args[0]; return hang() }, { signal: ac.signal })
  ac.abort()
  await assert.rejects(p, { name: 'AbortError' })
  assert.equal(got.aborted, true)
})

test('a cancelled HALF_OPEN probe gives its slot back', async () => {
  const b = mk({ consecutiveFailures: 1, resetTimeout: 60_000 })
  b.halfOpen()
  const ac = new AbortController()
  const probe = b.execute(hang, { signal: ac.signal })
  // The one slot is taken: another call is rejected.
  await assert.rejects(b.execute(() => 'x'), { name: 'CircuitBreakerOpenError' })
  ac.abort()
  await assert.rejects(probe, { name: 'AbortError' })
  assert.equal(b.state, 'HALF_OPEN')
  assert.equal(await b.execute(() => 'probe'), 'probe')
  assert.equal(b.state, 'CLOSED')
  assert.equal(b.getStats().ignoredCount, 1)
})

test('cancelled calls never trip the circuit', async () => {
  const b = mk({ consecutiveFailures: 1, timeout: 1000 })
  for (let i = 0; i < 20; i++) {
    const ac = new AbortController()
    const p = b.execute(hang, { signal: ac.signal })
    ac.abort()
    await assert.rejects(p)
  }
  assert.equal(b.state, 'CLOSED')
  assert.equal(b.getStats().ignoredCount, 20)
})

test('a timeout first: CircuitBreakerTimeoutError, counted as a timeout; a later abort changes nothing', async () => {
  const b = mk({ timeout: 30, minimumRequests: 100 })
  const ac = new AbortController()
  let actionSignal = null
  await assert.rejects(b.execute((s) => { actionSignal = s; return hang() }, { signal: ac.signal }), CircuitBreakerTimeoutError)
  assert.equal(actionSignal.reason.name, 'CircuitBreakerTimeoutError')
  assert.equal(listeners(ac.signal), 0, 'the listener stayed on the caller signal after the timeout')
  ac.abort()
  const s = b.getStats()
  assert.deepEqual([s.timeoutCount, s.failureCount, s.ignoredCount], [1, 1, 0])
})

test('settled calls leave no listener on a long-lived caller signal', async () => {
  const b = mk({ timeout: 1000, minimumRequests: 1000 })
  const shutdown = new AbortController().signal
  for (let i = 0; i < 50; i++) await b.execute(() => i, { signal: shutdown })
  for (let i = 0; i < 50; i++) await b.execute(() => Promise.reject(new Error('x')), { signal: shutdown }).catch(() => {})
  assert.equal(listeners(shutdown), 0)
  assert.deepEqual([b.getStats().successCount, b.getStats().failureCount], [50, 50])
})

test('options.signal that is not an AbortSignal is a TypeError naming it; the action does not run', async () => {
  const b = mk()
  let ran = false
  for (const bad of [true, {}, 'abort', null]) {
    await assert.rejects(b.execute(() => { ran = true }, { signal: bad }), (e) => e instanceof TypeError && /options\.signal/.test(e.message))
  }
  assert.equal(ran, false)
})

test('bypass hands the caller signal to the action; an aborted one stops it from running', async () => {
  const b = mk()
  const ac = new AbortController()
  const got = await b.execute((s) => s, { bypass: true, signal: ac.signal })
  assert.equal(got, ac.signal)
  let ran = false
  await assert.rejects(b.execute(() => { ran = true }, { bypass: true, signal: AbortSignal.abort() }), { name: 'AbortError' })
  assert.equal(ran, false)
})

test('wrap(fn, { passSignal: true }): fn gets the call signal after the caller arguments; a timeout aborts it', async () => {
  const b = mk({ timeout: 30, minimumRequests: 100 })
  let seen = null
  const get = b.wrap(function (id, n, signal) { seen = { self: this, id, n, signal }; return hang() }, { passSignal: true })
  const self = { get }
  await assert.rejects(self.get('a', 2), CircuitBreakerTimeoutError)
  assert.equal(seen.self, self)
  assert.deepEqual([seen.id, seen.n], ['a', 2])
  assert.ok(seen.signal instanceof AbortSignal)
  assert.equal(seen.signal.aborted, true)
  // Without passSignal, fn gets exactly the caller's arguments.
  const plain = b.wrap((...args) => args)
  assert.deepEqual(await plain(1, 2), [1, 2])
  assert.throws(() => b.wrap(() => 1, { passSignal: 'yes' }), (e) => e instanceof TypeError && /passSignal/.test(e.message))
  assert.throws(() => b.wrap(() => 1, 5), TypeError)
})
