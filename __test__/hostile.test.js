'use strict'
// Nothing the user passes in can crash the process or corrupt the breaker.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { CircuitBreaker, CircuitBreakerOpenError } = require('..')
const { uniq, sleep, fail, ok, failN, recordingLogger } = require('./helpers.js')

const mk = (extra = {}) => new CircuitBreaker({ name: uniq('hostile'), logger: null, timeout: 0, ...extra })

/** Runs fn while recording unhandled rejections; returns them. */
async function catchUnhandled(fn, settleMs = 50) {
  const seen = []
  const on = (e) => seen.push(e)
  process.on('unhandledRejection', on)
  try {
    await fn()
    await sleep(settleMs)
  } finally {
    process.off('unhandledRejection', on)
  }
  return seen
}

for (const [label, bad] of [['undefined', undefined], ['null', null], ['42', 42], ['{}', {}], ['"str"', 'str'], ['[]', []]]) {
  test(`execute(${label}) rejects with TypeError and records nothing`, async () => {
    const b = mk()
    let p
    assert.doesNotThrow(() => { p = b.execute(bad) })
    await assert.rejects(p, (e) => e instanceof TypeError && /execute/.test(e.message))
    assert.equal(b.getStats().totalRequests, 0)
    // many times: the fast path must not accept it either
    for (let i = 0; i < 40; i++) await assert.rejects(b.execute(bad), TypeError)
  })
}

test('execute(action, badOptions) rejects with TypeError', async () => {
  const b = mk()
  await assert.rejects(b.execute(ok(), 5), TypeError)
  await assert.rejects(b.execute(ok(), { timeout: -1 }), (e) => e instanceof RangeError && /timeout/.test(e.message))
  await assert.rejects(b.execute(ok(), { timeout: 'x' }), TypeError)
})

test('a thenable that settles twice settles the call once', async () => {
  const b = mk({ minimumRequests: 1000 })
  const twice = () => ({ then(res, rej) { res('first'); res('second'); rej(new Error('third')) } })
  assert.equal(await b.execute(twice), 'first')
  const rejFirst = () => ({ then(res, rej) { rej(new Error('first')); res('second') } })
  await assert.rejects(b.execute(rejFirst), /first/)
  const s = b.getStats()
  assert.equal(s.successCount, 1)
  assert.equal(s.failureCount, 1)
  assert.equal(s.totalRequests, 2)
})

test('a thenable whose then throws is a failure', async () => {
  const b = mk({ minimumRequests: 1000 })
  await assert.rejects(b.execute(() => ({ then() { throw new Error('then threw') } })), /then threw/)
  assert.equal(b.getStats().failureCount, 1)
})

test('a thenable that throws after resolving settles as success', async () => {
  const b = mk({ minimumRequests: 1000 })
  assert.equal(await b.execute(() => ({ then(res) { res(1); throw new Error('after') } })), 1)
  assert.equal(b.getStats().successCount, 1)
})

test('a fallback that rejects: execute rejects with that', async () => {
  const fbErr = new Error('fallback rejected')
  const b = mk({ fallback: () => Promise.reject(fbErr) })
  await assert.rejects(b.execute(fail()), (e) => e === fbErr)
  b.open()
  await assert.rejects(b.execute(ok()), (e) => e === fbErr)
})

test('a fallback that throws a non-Error: execute rejects with it', async () => {
  const b = mk({ fallback: () => { throw 'str' } }) // eslint-disable-line no-throw-literal
  await assert.rejects(b.execute(fail()), (e) => e === 'str')
})

test('listeners that throw on every event do not break calls', async () => {
  const logger = recordingLogger()
  const b = new CircuitBreaker({ name: uniq('hostile-listeners'), logger, timeout: 20, consecutiveFailures: 3, resetTimeout: 30, fallback: () => 'fb' })
  for (const e of ['stateChange', 'open', 'halfOpen', 'close', 'success', 'failure', 'reject', 'timeout', 'fallback']) {
    b.on(e, () => { throw new Error(`listener ${e}`) })
  }
  assert.equal(await b.execute(ok('v')), 'v')
  assert.equal(await b.execute(fail()), 'fb')
  assert.equal(await b.execute(() => sleep(200)), 'fb')
  assert.equal(await b.execute(fail()), 'fb')
  assert.equal(b.state, 'OPEN')
  assert.equal(await b.execute(ok()), 'fb')
  await sleep(50)
  assert.equal(await b.execute(ok('probe')), 'probe')
  assert.equal(b.state, 'CLOSED')
  assert.ok(logger.lines.filter((l) => l.level === 'error').length >= 9)
})

test('an options object with a throwing getter throws TypeError naming the option', () => {
  const o = { name: uniq('hostile-getter'), logger: null }
  Object.defineProperty(o, 'resetTimeout', { enumerable: true, get() { throw new Error('getter exploded') } })
  assert.throws(() => new CircuitBreaker(o), (e) => e instanceof TypeError && /resetTimeout/.test(e.message))
  const w = { name: uniq('hostile-getter-w'), logger: null, window: { type: 'count' } }
  Object.defineProperty(w.window, 'size', { enumerable: true, get() { throw new Error('boom') } })
  assert.throws(() => new CircuitBreaker(w), (e) => e instanceof TypeError && /window\.size/.test(e.message))
})

test('a 100,000-character name is a RangeError (without echoing the name in full)', () => {
  const name = 'n'.repeat(100_000)
  assert.throws(() => new CircuitBreaker({ name, logger: null }), (e) => {
    assert.ok(e instanceof RangeError)
    assert.match(e.message, /name/)
    assert.ok(e.message.length < 1000, `message length ${e.message.length}`)
    return true
  })
})

test('names with unicode, spaces and quotes work and round-trip through stats', async () => {
  const name = `${uniq('hostile')} 'q' "dq" ☃ \n tab\t`
  const b = new CircuitBreaker({ name, logger: null, timeout: 0 })
  await b.execute(ok())
  assert.equal(b.getStats().name, name)
  assert.ok(name in require('..').getAllCircuitBreakerStats())
})

test('calls on a disposed breaker reject with code BREAKWATER_DISPOSED (never run)', async () => {
  const b = mk()
  b.dispose()
  for (let i = 0; i < 40; i++) {
    let ran = false
    await assert.rejects(b.execute(() => { ran = true }), (e) => e instanceof Error && e.code === 'BREAKWATER_DISPOSED' && e.message.includes(b.name))
    assert.equal(ran, false)
  }
  assert.doesNotThrow(() => b.dispose())
  assert.equal(b.state, 'CLOSED', 'state of a disposed breaker is its last state, no crash')
})

test('a call in flight when the breaker is disposed settles normally', async () => {
  const b = mk({ timeout: 1000 })
  const p = b.execute(() => sleep(20).then(() => 'done'))
  b.dispose()
  assert.equal(await p, 'done')
})

test('a call in flight when the breaker is disposed that then fails rejects with its own error', async () => {
  for (const timeout of [0, 1000]) {
    const b = mk({ timeout })
    const err = new Error('the action failed')
    const p = b.execute(() => sleep(20).then(() => { throw err }))
    b.dispose()
    await assert.rejects(p, (e) => e === err)
  }
})

test('a call in flight when the breaker is disposed that then fails gets the fallback', async () => {
  const b = mk({ fallback: () => 'fb' })
  const p = b.execute(() => sleep(20).then(() => { throw new Error('x') }))
  b.dispose()
  assert.equal(await p, 'fb')
})

test('execute(promise) on an OPEN circuit does not leave the promise unhandled', async () => {
  const b = mk({ consecutiveFailures: 1, resetTimeout: 10_000 })
  await failN(b, 1)
  const unhandled = await catchUnhandled(async () => {
    const late = new Promise((_, rej) => setTimeout(() => rej(new Error('late')), 5))
    await assert.rejects(b.execute(late), CircuitBreakerOpenError)
  })
  assert.deepEqual(unhandled.map(String), [])
})

test('execute(promise) on a disposed breaker does not leave the promise unhandled', async () => {
  const b = mk()
  b.dispose()
  const unhandled = await catchUnhandled(async () => {
    const late = new Promise((_, rej) => setTimeout(() => rej(new Error('late')), 5))
    await assert.rejects(b.execute(late), (e) => e.code === 'BREAKWATER_DISPOSED')
  })
  assert.deepEqual(unhandled.map(String), [])
})

test('execute(promise) that times out and then rejects leaves nothing unhandled', async () => {
  const b = mk({ timeout: 10 })
  const unhandled = await catchUnhandled(async () => {
    const late = new Promise((_, rej) => setTimeout(() => rej(new Error('late')), 40))
    await assert.rejects(b.execute(late), { name: 'CircuitBreakerTimeoutError' })
  }, 80)
  assert.deepEqual(unhandled.map(String), [])
})

test('an action that returns a rejected promise after timing out leaves nothing unhandled', async () => {
  const b = mk({ timeout: 10 })
  const unhandled = await catchUnhandled(async () => {
    await assert.rejects(b.execute(() => sleep(40).then(() => { throw new Error('late') })), { name: 'CircuitBreakerTimeoutError' })
  }, 80)
  assert.deepEqual(unhandled.map(String), [])
})

test('isFailure / shouldTrip / fallback returning odd values do not break the breaker', async () => {
  const b = mk({ isFailure: () => 'yes', shouldTrip: () => 'yes', minimumRequests: 1000 })
  await assert.rejects(b.execute(fail()))
  assert.equal(b.state, 'CLOSED', 'only shouldTrip === true trips')
  assert.equal(b.getStats().failureCount, 1, 'isFailure !== false counts as failure')
  const c = mk({ fallback: () => undefined })
  assert.equal(await c.execute(fail()), undefined)
})

test('a huge number of concurrent calls settles every one', async () => {
  const b = mk({ timeout: 5_000, minimumRequests: 1_000_000 })
  const N = 20_000
  const ps = new Array(N)
  for (let i = 0; i < N; i++) ps[i] = b.execute(() => (i % 10 === 0 ? Promise.reject(new Error('x')) : i)).then(() => 1, () => 0)
  const r = await Promise.all(ps)
  assert.equal(r.reduce((a, x) => a + x, 0), N - N / 10)
  const s = b.getStats()
  assert.equal(s.successCount + s.failureCount, N)
  assert.equal(s.failureCount, N / 10)
})

test('on(), open(ms) and wrap() with hostile arguments throw TypeError/RangeError, not crash', () => {
  const b = mk()
  assert.throws(() => b.on(Symbol('x'), () => {}), TypeError)
  assert.throws(() => b.on('open', null), TypeError)
  assert.throws(() => b.open(NaN), TypeError)
  assert.throws(() => b.open(Infinity), RangeError)
  assert.throws(() => b.open(2 ** 40), RangeError)
  assert.throws(() => b.wrap(undefined), TypeError)
  assert.equal(b.state, 'CLOSED')
})
