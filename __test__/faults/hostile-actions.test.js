'use strict'
// Fault injection: actions that return things nobody should return. Whatever an action is or
// returns, execute() must not throw synchronously; the call fails with the error the lookup
// raised, counts once as a failure (never later as a timeout), leaves no unhandled
// rejection behind, and gives a half-open probe slot back. Each case runs on every path a
// call can take: the fast path (every call but the first of each 5 ms clock tick), the sampled
// general path, with a timeout, and as a HALF_OPEN probe.
const test = require('node:test')
const assert = require('node:assert/strict')
const { CircuitBreaker } = require('../..')
const { uniq, sleep } = require('../helpers.js')

const boom = (what) => () => { throw new Error(what) }

// Each returns a fresh hostile value.
const HOSTILE = {
  'a revoked Proxy': () => {
    const { proxy, revoke } = Proxy.revocable({}, {})
    revoke()
    return proxy
  },
  'a Proxy whose prototype lookup throws (instanceof throws)': () => new Proxy({}, { getPrototypeOf: boom('getPrototypeOf') }),
  "a Promise whose own 'then' getter throws": () => Object.defineProperty(Promise.resolve(1), 'then', { get: boom('then getter') }),
  "a Promise whose 'constructor' getter throws (then() throws)": () => Object.defineProperty(Promise.resolve(1), 'constructor', { get: boom('constructor getter') }),
  'an object posing as a Promise (Promise.prototype, no promise inside)': () => Object.create(Promise.prototype),
}

// An unhandled rejection (a stray CircuitBreakerTimeoutError) would crash a process running
// with Node's default --unhandled-rejections=throw: collect them instead, and assert none.
const unhandled = []
process.on('unhandledRejection', (e) => unhandled.push(e))

/** Calls execute and reports whether it threw synchronously. */
function call(b, action, opts) {
  try {
    return { p: b.execute(action, opts) }
  } catch (e) {
    return { threw: e }
  }
}

async function expectFailure(b, make, label) {
  const { p, threw } = call(b, make)
  assert.equal(threw, undefined, `${label}: execute threw synchronously: ${threw && threw.message}`)
  assert.ok(p instanceof Promise, `${label}: execute returned no promise`)
  await assert.rejects(p, (e) => e instanceof Error, `${label}: the call did not fail`)
}

for (const [what, make] of Object.entries(HOSTILE)) {
  for (const timeout of [0, 50]) {
    test(`an action returning ${what}, timeout ${timeout}: rejects, never throws, counts once as a failure`, async () => {
      unhandled.length = 0
      const b = new CircuitBreaker({ name: uniq('hostile-result'), timeout, failureThreshold: 1, minimumRequests: 1000, logger: null })
      // 40 calls: the first (and the first of each clock tick) take the general path, the others the fast path;
      // good calls in between switch the fast path between its two failure forms.
      for (let i = 0; i < 40; i++) {
        await expectFailure(b, make, `call ${i}`)
        if (i % 3 === 0) await b.execute(() => 'ok')
      }
      if (timeout > 0) await sleep(timeout * 3) // a deadline left armed would fire by now
      const s = b.getStats()
      assert.equal(s.failureCount, 40)
      assert.equal(s.timeoutCount, 0, 'counted as a timeout later')
      assert.equal(s.successCount, 14)
      assert.deepEqual(unhandled, [])
    })
  }

  test(`a HALF_OPEN probe returning ${what}: the probe fails, its slot is given back`, async () => {
    unhandled.length = 0
    for (const timeout of [0, 50]) {
      const b = new CircuitBreaker({ name: uniq('hostile-probe'), timeout, resetTimeout: 30, consecutiveFailures: 1, logger: null })
      b.halfOpen()
      await expectFailure(b, make, `probe (timeout ${timeout})`)
      // A failed probe re-opens the circuit; it is not left HALF_OPEN with its one slot taken.
      assert.equal(b.state, 'OPEN', `timeout ${timeout}`)
      await sleep(60)
      assert.equal(await b.execute(() => 'next probe'), 'next probe')
      assert.equal(b.state, 'CLOSED')
      if (timeout > 0) await sleep(timeout * 3)
      assert.equal(b.getStats().timeoutCount, 0)
    }
    assert.deepEqual(unhandled, [])
  })
}

test('an already-created promise that is hostile (passed instead of a function) rejects too', async () => {
  unhandled.length = 0
  const b = new CircuitBreaker({ name: uniq('hostile-promise'), timeout: 50, logger: null })
  for (const make of Object.values(HOSTILE)) {
    const { p, threw } = call(b, make())
    assert.equal(threw, undefined)
    await assert.rejects(p)
  }
  await sleep(150)
  assert.equal(b.getStats().timeoutCount, 0)
  assert.deepEqual(unhandled, [])
})

test('a revoked Proxy as the action itself, or as its options, rejects without running anything', async () => {
  const b = new CircuitBreaker({ name: uniq('hostile-fn'), timeout: 50, logger: null })
  const { proxy: fn, revoke } = Proxy.revocable(() => 'ran', {})
  revoke()
  const r1 = call(b, fn)
  assert.equal(r1.threw, undefined)
  await assert.rejects(r1.p, TypeError)
  const { proxy: opts, revoke: r } = Proxy.revocable({}, {})
  r()
  let ran = false
  const r2 = call(b, () => { ran = true }, opts)
  assert.equal(r2.threw, undefined)
  await assert.rejects(r2.p, TypeError)
  assert.equal(ran, false)
})
