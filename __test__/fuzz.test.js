'use strict'
// Property-style randomized tests with a seeded PRNG: options, environment variables,
// initialState snapshots, execute() arguments and sequences of control calls.
//
// Rerun:      CI=1 node --test --test-concurrency=1 __test__/fuzz.test.js
// Reproduce:  FUZZ_SEED=<seed printed on failure> (FUZZ_ITERS=<n> for more or fewer iterations;
//             FUZZ_SEED=random for a fresh seed; FUZZ_COLLECT=1 to list every kind of failure)
// Every iteration draws from its own generator, seeded from (seed, iteration), so a failure
// message names the one iteration to replay (FUZZ_ONLY=<iteration>).
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { CircuitBreaker, CircuitBreakerOpenError, CircuitBreakerTimeoutError } = require('..')
const { uniq, sleep } = require('./helpers.js')

// A fixed default keeps the suite deterministic; FUZZ_SEED=random explores a new seed each run.
const SEED = process.env.FUZZ_SEED === 'random'
  ? (Date.now() ^ (process.pid << 8)) >>> 0
  : process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) >>> 0 : 0xb4ea4

const ITERS = process.env.FUZZ_ITERS !== undefined ? Number(process.env.FUZZ_ITERS) : 2_000

const ONLY = process.env.FUZZ_ONLY !== undefined ? Number(process.env.FUZZ_ONLY) : undefined

/** Iteration i's own seed: a hash of (SEED, i), so nearby seeds do not share iterations. */
function iterSeed(i) {
  let h = (SEED ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}

function mulberry32(a) {
  return function () {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A generator with the helpers the tests draw from. */
function gen(seed) {
  const r = mulberry32(seed)
  const g = {
    r,
    int: (lo, hi) => lo + Math.floor(r() * (hi - lo + 1)),
    pick: (xs) => xs[Math.floor(r() * xs.length)],
    chance: (p) => r() < p,
  }
  return g
}

// FUZZ_COLLECT=1: keep going after a failure, and print each kind of failure once at the end.
const COLLECT = process.env.FUZZ_COLLECT === '1'
const collected = new Map()
if (COLLECT) process.on('exit', () => { for (const [k, v] of collected) console.error(`${v.n}x (first seed ${v.seed}) ${k}`) })

/** Runs `body(g, i)` ITERS times; a failure names the seed and the iteration. */
async function fuzz(t, label, body) {
  t.diagnostic(`${label}: FUZZ_SEED=${SEED} iterations=${ITERS}`)
  for (const k of Object.keys(knownSeen)) delete knownSeen[k]
  for (let i = 0; i < ITERS; i++) {
    if (ONLY !== undefined && i !== ONLY) continue
    const g = gen(iterSeed(i))
    fuzz.iter = i
    try {
      await body(g, i)
    } catch (e) {
      if (COLLECT) {
        const key = `${label}: ${String(e && e.message).split('\n')[0].replace(/t-fuzz[-\w]+/g, 'NAME').slice(0, 200)}`
        if (!collected.has(key)) collected.set(key, { n: 0, seed: `${SEED} FUZZ_ONLY=${i}` })
        collected.get(key).n++
        continue
      }
      const msg = `${label}: failed at iteration ${i} (rerun with FUZZ_SEED=${SEED}; FUZZ_ONLY=${i} replays that iteration alone): ${e && e.message}`
      console.error(msg)
      if (e && typeof e === 'object') {
        try {
          e.message = msg
        } catch {}
        throw e
      }
      throw new Error(msg)
    }
  }
  for (const [k, n] of Object.entries(knownSeen)) t.diagnostic(`${label}: known bug ${k} hit ${n}x (${KNOWN[k]})`)
}

// Bugs these tests found (all fixed): hitting one again fails the test, naming it.
const KNOWN = {
  A: 'options object is a Proxy whose ownKeys trap throws, or a revoked Proxy: the raw error escapes',
  B: "an option value that is a revoked Proxy: the message is V8's \"Cannot perform 'IsArray'\" and names no option",
  C: 'fractional resetTimeout is truncated to whole ms by the native side (stats.resetTimeout differs from the option)',
  D: 'execute(promise, badOptions): the promise is not marked handled -> unhandledRejection (counted: inputs where it applies; the test marks those promises handled itself)',
  E: 'execute(action) throws synchronously when reading action.then throws',
  F: 'initialState.nextAttemptAt above 2^64 ms is accepted and clamped to 18446744073709552000',
  G: 'a logger object whose info/warn/error/log getter throws: the raw thrown value escapes the constructor',
}
const knownSeen = {}
const known = (k) => {
  knownSeen[k] = (knownSeen[k] || 0) + 1
  throw new Error(`fixed bug ${k} is back: ${KNOWN[k]}`)
}
const isRevokedMsg = (e) => e instanceof TypeError && !e.message.startsWith('breakwater:') && /Cannot perform '\w+' on a proxy that has been revoked/.test(e.message)

/** Watches for unhandled rejections and uncaught exceptions for the duration of a test. */
function watchProcess(t) {
  const seen = []
  // the iteration is recorded with the error: a rejection left unhandled names where it surfaced
  const onRej = (e) => seen.push(['unhandledRejection', e, fuzz.iter])
  const onExc = (e) => seen.push(['uncaughtException', e, fuzz.iter])
  process.on('unhandledRejection', onRej)
  process.on('uncaughtException', onExc)
  t.after(() => {
    process.off('unhandledRejection', onRej)
    process.off('uncaughtException', onExc)
  })
  return seen
}

// ---- random values of every JS type -------------------------------------------------------

const SYMBOL = Symbol('fuzz')

function throwingGetterObject(g) {
  const o = {}
  const key = g.pick(['type', 'size', 'durationMs', 'buckets', 'state', 'then', 'valueOf', 'toString', 'info', 'warn'])
  Object.defineProperty(o, key, { enumerable: true, get() { throw g.pick([new Error('getter threw'), 'a string', undefined, null, Symbol('s')]) } })
  return o
}

function hostileProxy(g) {
  const kind = g.int(0, 3)
  if (kind === 0) {
    const { proxy, revoke } = Proxy.revocable({}, {})
    revoke()
    return proxy
  }
  if (kind === 1) {
    return new Proxy({}, {
      get() { throw new Error('proxy get') },
      ownKeys() { throw new Error('proxy ownKeys') },
      getOwnPropertyDescriptor() { throw new Error('proxy gOPD') },
      has() { throw new Error('proxy has') },
    })
  }
  if (kind === 2) return new Proxy({ type: 'count', size: 10, state: 'CLOSED' }, {}) // transparent
  // a proxy whose values change every read
  let n = 0
  return new Proxy({ type: 'time', state: 'OPEN' }, { get(t, k) { n++; return n % 2 ? Reflect.get(t, k) : 'flip' } })
}

function randomValue(g, depth = 0) {
  switch (g.int(0, 21)) {
    case 0: return undefined
    case 1: return null
    case 2: return g.chance(0.5)
    case 3: return g.pick([0, -0, 1, -1, 0.5, 0.999999, 1.0000001, 2, 10, 100, 1e3])
    case 4: return g.pick([NaN, Infinity, -Infinity])
    case 5: return g.pick([Number.MAX_VALUE, Number.MIN_VALUE, Number.MAX_SAFE_INTEGER, 2 ** 53 + 2, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 1e9, 1e9 + 1, 1e21, -1e21, 86_400_000, 86_400_001])
    case 6: return (g.r() - 0.5) * 10 ** g.int(0, 12)
    case 7: return g.int(-5, 2_000_000)
    case 8: return g.pick(['', ' ', '10', '0.5', 'abc', 'time', 'count', 'CLOSED', 'OPEN', 'HALF_OPEN', 'open', 'true', '\u0000', 'x'.repeat(300), '__proto__', '💥'])
    case 9: return g.pick([10n, 0n, -1n])
    case 10: return g.pick([SYMBOL, Symbol.iterator])
    case 11: return g.pick([() => {}, () => { throw new Error('fn threw') }, () => true, () => false, async () => 'fb', function (e) { return e }, () => { throw undefined }, Math.max, class K {}])
    case 12: return depth > 1 ? [] : [randomValue(g, depth + 1), randomValue(g, depth + 1)]
    case 13: return {}
    case 14: return throwingGetterObject(g)
    case 15: return hostileProxy(g)
    case 16: return g.pick([new Date(), /re/, new Map(), Object.create(null), new Number(5), new String('x'), new Boolean(false)])
    case 17: return { valueOf() { throw new Error('valueOf') }, toString() { throw new Error('toString') } }
    case 18: return g.pick([{ type: 'count', size: g.int(-2, 2000) }, { type: 'time', durationMs: g.int(-1, 100_000), buckets: g.int(0, 1200) }, { type: 'time' }, { type: 'count' }, { type: g.pick(['sliding', 'COUNT', undefined]) }])
    case 19: return g.pick([console, { info() {}, warn() {}, error() {} }, { log() { throw new Error('logger threw') } }, { warn: 5 }, { info: () => {}, get warn() { throw new Error('warn getter') } }])
    case 20: return Object.freeze({ state: g.pick(['CLOSED', 'OPEN', 'HALF_OPEN']), forced: g.chance(0.5), nextAttemptAt: g.pick([null, Date.now() + 50, 0, Date.now() - 10]) })
    default: return depth > 1 ? {} : { a: randomValue(g, depth + 1) }
  }
}

// ---- 1. random option objects --------------------------------------------------------------

const KNOWN_KEYS = ['name', 'failureThreshold', 'minimumRequests', 'consecutiveFailures', 'slowCallDurationMs',
  'slowCallRateThreshold', 'timeout', 'resetTimeout', 'halfOpenMaxRequests', 'successThreshold', 'halfOpenTimeout',
  'window', 'enabled', 'logger', 'initialState', 'store', 'fallback', 'isFailure', 'shouldTrip', 'onStateChange']
const JUNK = ['foo', 'constructor', 'toString', 'errorThresholdPercentage', 'volumeThreshold', 'Timeout', 'name ', '']

/** A plausible value for a known key, right or slightly wrong. */
function valueFor(g, key) {
  if (g.chance(0.35)) return randomValue(g)
  switch (key) {
    case 'failureThreshold': return g.pick([0.5, 1, 0.01, 0, 1.5, 50, -0.1, 1e-9])
    case 'slowCallRateThreshold': return g.pick([0, 0.5, 1, 2, -1])
    case 'minimumRequests': case 'halfOpenMaxRequests': case 'successThreshold': case 'consecutiveFailures':
      return g.pick([0, 1, 3, 10, 1e9, 1e9 + 1, 2.5, -1])
    case 'timeout': case 'resetTimeout': case 'halfOpenTimeout': case 'slowCallDurationMs':
      return g.pick([0, 1, 5, 1000, 30_000, 2 ** 31 - 1, 2 ** 31, 0.5, -1])
    case 'window': return randomValue(g) && g.pick([{ type: 'count', size: g.int(0, 200) }, { type: 'time', durationMs: g.int(0, 70_000), buckets: g.int(0, 20) }])
    case 'enabled': return g.chance(0.5)
    case 'logger': return g.pick([null, { info() {}, warn() {}, error() {} }, { log() { throw new Error('x') } }])
    case 'initialState': return g.pick([{ state: 'OPEN' }, { state: 'CLOSED' }, { state: 'HALF_OPEN' }, { state: 'OPEN', forced: true }, { state: 'OPEN', nextAttemptAt: Date.now() + 5 }])
    case 'store': return g.pick([null, {}, { load() { return null }, save() {} }, { load() { throw new Error('down') }, save() {}, loadTimeoutMs: 5 }, { load: 1, save() {} }, { load() {}, save() {}, syncIntervalMs: 0 }])
    case 'fallback': case 'isFailure': case 'shouldTrip': case 'onStateChange':
      return g.pick([() => 'fb', () => { throw new Error('cb threw') }, () => true, () => false, async () => 'afb', () => undefined])
    default: return randomValue(g)
  }
}

function randomOptions(g) {
  const o = g.chance(0.05) ? Object.create(null) : {}
  const keys = new Set()
  const n = g.int(0, 7)
  for (let k = 0; k < n; k++) keys.add(g.chance(0.85) ? g.pick(KNOWN_KEYS) : g.pick(JUNK))
  for (const k of keys) {
    if (g.chance(0.04)) Object.defineProperty(o, k, { enumerable: true, get() { throw new Error(`getter ${k}`) } })
    else o[k] = k === 'name' && g.chance(0.7) ? uniq('fuzz-opt') : valueFor(g, k)
  }
  if (!keys.has('name') && g.chance(0.9)) o.name = uniq('fuzz-opt')
  if (!keys.has('logger')) o.logger = null
  if (g.chance(0.05)) o[Symbol('junk')] = 1
  if (g.chance(0.03)) return { hostileTop: true, value: hostileProxy(g) }
  if (g.chance(0.02)) return { hostileTop: true, value: randomValue(g) }
  return o
}

function loggerGetterThrows(opts) {
  let l
  try { l = opts.logger } catch { return false }
  if (l === null || typeof l !== 'object') return false
  for (const k of ['info', 'warn', 'error', 'log']) {
    try { if (typeof l[k] === 'function') return false } catch { return true }
  }
  return false
}

/** The option names an error message may name, for this options value. */
function namesIn(opts) {
  const names = ['name', 'options']
  try {
    if (opts !== null && typeof opts === 'object') names.push(...Object.keys(opts))
  } catch {}
  return names
}

function assertOptionError(e, allowed, what) {
  assert.ok(e instanceof TypeError || e instanceof RangeError, `${what}: threw ${e && e.constructor && e.constructor.name}: ${describe(e)}`)
  assert.ok(allowed.some((k) => k !== '' && e.message.includes(k)), `${what}: message names none of ${JSON.stringify(allowed)}: ${e.message}`)
}

function describe(e) {
  try {
    return e instanceof Error ? `${e.name}: ${e.message}` : String(e)
  } catch {
    return '(unprintable)'
  }
}

/** Checks a stats object for internal consistency. */
function assertStats(s, b, expectCalls) {
  assert.ok(['CLOSED', 'OPEN', 'HALF_OPEN'].includes(s.state), `state ${s.state}`)
  for (const k of ['totalRequests', 'successCount', 'failureCount', 'rejectionCount', 'timeoutCount', 'fallbackCount', 'ignoredCount', 'slowCallCount', 'consecutiveFailures', 'consecutiveSuccesses']) {
    assert.ok(Number.isInteger(s[k]) && s[k] >= 0, `${k} = ${s[k]}`)
  }
  assert.equal(s.totalRequests, s.successCount + s.failureCount + s.rejectionCount + s.ignoredCount)
  if (expectCalls !== undefined) assert.equal(s.totalRequests, expectCalls, 'every call counted once')
  assert.ok(s.timeoutCount <= s.failureCount, 'timeouts are failures')
  assert.equal(s.window.calls, s.window.successes + s.window.failures)
  assert.ok(s.window.calls <= s.successCount + s.failureCount)
  assert.ok(s.failureRate >= 0 && s.failureRate <= 100, `failureRate ${s.failureRate}`)
  assert.ok(s.slowCallRate >= 0 && s.slowCallRate <= 100, `slowCallRate ${s.slowCallRate}`)
  if (s.state === 'CLOSED') assert.equal(s.retryAfterMs, null, 'retryAfterMs null when CLOSED')
  if (s.state === 'HALF_OPEN') assert.equal(s.retryAfterMs, 0)
  if (s.state !== 'OPEN') assert.equal(s.nextAttemptAt, null, `nextAttemptAt ${s.nextAttemptAt} in ${s.state}`)
  if (s.retryAfterMs !== null) assert.ok(s.retryAfterMs >= 0)
  for (const k of ['mean', 'p50', 'p90', 'p99', 'max']) assert.ok(Number.isFinite(s.latencyMs[k]) && s.latencyMs[k] >= 0, `latency ${k}`)
  assertJsonSafe(s, 'stats')
  if (b) assert.equal(s.name, b.name)
}

/** Plain objects, strings, booleans, null and finite numbers only: JSON keeps it as it is. */
function assertJsonSafe(v, where) {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return
  if (typeof v === 'number') return assert.ok(Number.isFinite(v), `${where} = ${v} does not survive JSON`)
  assert.ok(typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype, `${where} is a ${typeof v}`)
  for (const [k, x] of Object.entries(v)) assertJsonSafe(x, `${where}.${k}`)
}

/** Awaits a promise for at most ms; returns { settled, ok, value|error }. */
async function settleWithin(p, ms) {
  let timer
  const limit = new Promise((r) => { timer = setTimeout(() => r({ settled: false }), ms) })
  const res = await Promise.race([p.then((value) => ({ settled: true, ok: true, value }), (error) => ({ settled: true, ok: false, error })), limit])
  clearTimeout(timer)
  return res
}

test('fuzz: random option objects either build a working breaker or throw TypeError/RangeError naming an option', async (t) => {
  const seen = watchProcess(t)
  let built = 0
  let refused = 0
  await fuzz(t, 'options', async (g) => {
    let opts = randomOptions(g)
    let hostileTop = false
    if (opts && opts.hostileTop === true) ({ value: opts, hostileTop } = opts)
    let b
    try {
      b = new CircuitBreaker(opts)
    } catch (e) {
      refused++
      if (hostileTop && (!(e instanceof TypeError || e instanceof RangeError) || isRevokedMsg(e))) return known('A')
      if (isRevokedMsg(e)) return known('B')
      if (!(e instanceof TypeError || e instanceof RangeError) && loggerGetterThrows(opts)) return known('G')
      const names = namesIn(opts)
      if (names.includes('')) names.push('unknown option ', 'reading option ')
      assertOptionError(e, names, 'new CircuitBreaker')
      return
    }
    built++
    try {
      let calls = 0
      for (let k = 0; k < g.int(1, 4); k++) {
        const action = g.pick([() => 'v', () => Promise.reject(new Error('f')), () => { throw new Error('s') }])
        const p = b.execute(action)
        calls++
        assert.ok(p instanceof Promise)
        const r = await settleWithin(p, 2_000)
        assert.ok(r.settled, 'execute settled')
      }
      assert.ok(['CLOSED', 'OPEN', 'HALF_OPEN'].includes(b.state))
      const s = b.getStats()
      assertStats(s, b, calls)
      const given = {}
      try {
        for (const k of ['failureThreshold', 'minimumRequests', 'timeout', 'resetTimeout']) if (opts[k] !== undefined) given[k] = opts[k]
      } catch {}
      for (const [k, v] of Object.entries(given)) {
        if (k === 'resetTimeout' && !Number.isInteger(v) && s[k] === Math.trunc(v)) { known('C'); continue }
        assert.ok(s[k] === v, `stats.${k} = ${s[k]}, the option given was ${v}`)
      }
    } finally {
      b.dispose()
    }
  })
  assert.deepEqual(seen, [])
  t.diagnostic(`built ${built}, refused ${refused}`)
  assert.ok(built > ITERS / 10 && refused > ITERS / 10, `both outcomes exercised (built ${built}, refused ${refused})`)
})

// ---- 2. random CIRCUIT_BREAKER_* environment values ----------------------------------------

const ENV = {
  CIRCUIT_BREAKER_ENABLED: 'enabled',
  CIRCUIT_BREAKER_FAILURE_THRESHOLD: 'failureThreshold',
  CIRCUIT_BREAKER_MINIMUM_REQUESTS: 'minimumRequests',
  CIRCUIT_BREAKER_TIMEOUT: 'timeout',
  CIRCUIT_BREAKER_RESET_TIMEOUT: 'resetTimeout',
  CIRCUIT_BREAKER_HALF_OPEN_TIMEOUT: 'halfOpenTimeout',
}

function envValue(g) {
  return g.pick([
    () => g.pick(['', ' ', '\t', '0', '-0', '1', '-1', '0.5', '.5', '5.', '+5', '1.5', '10', '1e3', '1E3', '1e400', '1e-400', '0x10', '0b1', '010',
      '10ms', '1_000', '1,5', 'NaN', 'Infinity', '-Infinity', 'true', 'false', 'TRUE', 'yes', 'No', 'on', 'OFF', 'null', 'undefined',
      ' 5 ', '\n7\n', '٣', '５', '2147483647', '2147483648', '1000000000', '1000000001', '9'.repeat(400), '💥', 'x'.repeat(100)]),
    () => String(g.int(-10, 100_000)),
    () => String(g.r()),
    () => String((g.r() - 0.3) * 10 ** g.int(0, 12)),
    () => Array.from({ length: g.int(1, 8) }, () => String.fromCharCode(g.int(1, 0x2fff))).join(''),
  ])()
}

test('fuzz: random CIRCUIT_BREAKER_* values either apply or throw TypeError/RangeError naming the variable', async (t) => {
  const saved = {}
  for (const k of Object.keys(ENV)) saved[k] = process.env[k]
  t.after(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  })
  let built = 0
  let refused = 0
  await fuzz(t, 'env', async (g) => {
    const set = {}
    for (const k of Object.keys(ENV)) {
      delete process.env[k]
      if (g.chance(0.4)) process.env[k] = set[k] = envValue(g)
    }
    let b
    try {
      b = new CircuitBreaker({ name: uniq('fuzz-env'), logger: null })
    } catch (e) {
      refused++
      assert.ok(Object.keys(set).length > 0, `threw with no variable set: ${describe(e)}`)
      assertOptionError(e, Object.keys(set), `env ${JSON.stringify(set)}`)
      return
    } finally {
      for (const k of Object.keys(ENV)) delete process.env[k]
    }
    built++
    try {
      const s = b.getStats()
      assertStats(s, b, 0)
      for (const [variable, raw] of Object.entries(set)) {
        const key = ENV[variable]
        const v = raw.trim()
        if (v === '') continue
        if (key === 'enabled') {
          assert.equal(b.enabled, /^(true|1|yes|on)$/i.test(v), `${variable}=${JSON.stringify(raw)}`)
        } else if (key !== 'halfOpenTimeout') {
          if (key === 'resetTimeout' && !Number.isInteger(Number(v)) && s[key] === Math.trunc(Number(v))) { known('C'); continue }
          assert.ok(s[key] === Number(v), `${variable}=${JSON.stringify(raw)} applied as ${s[key]}`)
        } else {
          assert.ok(Number.isFinite(Number(v)), `${variable}=${JSON.stringify(raw)} accepted`)
        }
      }
      const r = await settleWithin(b.execute(() => 1), 2_000)
      assert.ok(r.settled)
    } finally {
      b.dispose()
    }
  })
  t.diagnostic(`built ${built}, refused ${refused}`)
  assert.ok(built > ITERS / 10 && refused > ITERS / 10, `both outcomes exercised (built ${built}, refused ${refused})`)
})

// ---- 3. random initialState snapshots -------------------------------------------------------

/** Real toJSON() snapshots in every state, made once. */
async function realSnapshots() {
  const mk = (extra) => new CircuitBreaker({ name: uniq('fuzz-snap-src'), logger: null, timeout: 0, ...extra })
  const closed = mk({})
  await closed.execute(() => 1)
  const tripped = mk({ consecutiveFailures: 1, resetTimeout: 60_000 })
  await tripped.execute(() => Promise.reject(new Error('x'))).catch(() => {})
  const forced = mk({})
  forced.open()
  const half = mk({})
  half.halfOpen()
  const expired = mk({ consecutiveFailures: 1, resetTimeout: 5 })
  await expired.execute(() => Promise.reject(new Error('x'))).catch(() => {})
  const snap = { closed: closed.toJSON(), tripped: tripped.toJSON(), forced: forced.toJSON(), half: half.toJSON(), expiredOpen: expired.toJSON() }
  await sleep(10)
  const disposed = mk({})
  disposed.dispose()
  snap.disposed = disposed.toJSON()
  for (const b of [closed, tripped, forced, half, expired]) b.dispose()
  return snap
}

function mutateSnapshot(g, base) {
  let s = g.chance(0.5) ? JSON.parse(JSON.stringify(base)) : { ...base }
  const fields = ['state', 'forced', 'nextAttemptAt', 'stateChangedAt', 'savedAt', 'name']
  const n = g.int(0, 3)
  for (let k = 0; k < n; k++) {
    const f = g.pick(fields)
    const op = g.int(0, 4)
    if (op === 0) delete s[f]
    else if (op === 1) s[f] = randomValue(g)
    else if (op === 2) s[f] = g.pick([null, 0, -0, -1, Date.now(), Date.now() + 1e6, 1e300, 'OPEN', 'closed', true, 'true'])
    else if (op === 3) s['junk' + k] = randomValue(g)
    else if (f === 'state') s.state = g.pick(['CLOSED', 'OPEN', 'HALF_OPEN', 'open', ' OPEN', 'HALF-OPEN', ''])
  }
  if (g.chance(0.05)) {
    try { s = JSON.stringify(s) } catch { s = '{"state":"OPEN"}' } // a string, not an object
  }
  if (g.chance(0.03) && typeof s === 'object') Object.defineProperty(s, 'state', { enumerable: true, get() { throw new Error('state getter') } })
  return s
}

test('fuzz: random initialState snapshots either restore or throw TypeError naming initialState', async (t) => {
  const seen = watchProcess(t)
  const real = await realSnapshots()
  const bases = Object.values(real)
  let restored = 0
  let refused = 0
  await fuzz(t, 'initialState', async (g) => {
    const snap = g.chance(0.1) ? randomValue(g) : mutateSnapshot(g, g.pick(bases))
    if (snap === undefined) return // no initialState given at all
    let b
    try {
      b = new CircuitBreaker({ name: uniq('fuzz-snap'), logger: null, timeout: 0, resetTimeout: 60_000, initialState: snap })
    } catch (e) {
      refused++
      if (isRevokedMsg(e)) return known('B')
      assert.ok(e instanceof TypeError, `threw ${describe(e)}`)
      assert.match(e.message, /initialState/)
      return
    }
    restored++
    try {
      // A snapshot accepted must have been a valid one.
      const st = snap.state
      assert.ok(['CLOSED', 'OPEN', 'HALF_OPEN'].includes(st), `accepted state ${String(st)}`)
      const state = b.state
      const s = b.getStats()
      assertStats(s, b, 0)
      const forced = snap.forced === true
      if (st === 'CLOSED') assert.equal(state, 'CLOSED')
      else if (st === 'HALF_OPEN') assert.equal(state, 'HALF_OPEN')
      else if (forced) {
        assert.equal(state, 'OPEN', 'forced open stays open')
        assert.equal(s.retryAfterMs, null)
      } else if (typeof snap.nextAttemptAt === 'number' && snap.nextAttemptAt > Date.now() + 100) {
        assert.equal(state, 'OPEN')
        if (snap.nextAttemptAt >= 2 ** 64 && s.nextAttemptAt === 2 ** 64) known('F')
        else assert.equal(s.nextAttemptAt, snap.nextAttemptAt)
      } else assert.ok(state === 'OPEN' || state === 'HALF_OPEN', `state ${state}`)
      // the breaker's own snapshot restores to the same thing; unless its open period ends
      // around now (a snapshot's nextAttemptAt of Date.now() or a few ms on): then either may
      // have half-opened by the time it is read
      const again = b.toJSON()
      const c = new CircuitBreaker({ name: uniq('fuzz-snap2'), logger: null, timeout: 0, resetTimeout: 60_000, initialState: JSON.parse(JSON.stringify(again)) })
      try {
        assert.equal(c.toJSON().forced, again.forced)
        const ending = !again.forced && typeof again.nextAttemptAt === 'number' && again.nextAttemptAt < Date.now() + 1_000
        if (ending) assert.ok(['OPEN', 'HALF_OPEN'].includes(c.state), `state ${c.state}`)
        else {
          assert.equal(c.state, b.state)
          assert.equal(c.getStats().nextAttemptAt, again.nextAttemptAt)
        }
      } finally {
        c.dispose()
      }
      let ran = false
      const r = await settleWithin(b.execute(() => { ran = true; return 1 }), 2_000)
      assert.ok(r.settled)
      if (!ran) assert.ok(r.error instanceof CircuitBreakerOpenError, describe(r.error))
    } finally {
      b.dispose()
    }
  })
  assert.deepEqual(seen, [])
  t.diagnostic(`restored ${restored}, refused ${refused}`)
  assert.ok(restored > ITERS / 10 && refused > ITERS / 20, `both outcomes exercised (restored ${restored}, refused ${refused})`)
})

// ---- 4. random execute() arguments ----------------------------------------------------------

function thrownValue(g) {
  return g.pick([undefined, null, 'a string', 42, 0, false, SYMBOL, new Error('e'), new TypeError('te'), { message: 'plain object' }, Object.create(null),
    (() => { const o = {}; Object.defineProperty(o, 'message', { get() { throw new Error('message getter') } }); return o })(),
    new Proxy({}, { get() { throw new Error('proxy') } })])
}

/** A random action: functions of every behaviour, thenables, promises and non-functions. */
function randomAction(g) {
  const v = thrownValue(g)
  const kind = g.int(0, 20)
  switch (kind) {
    case 0: return { valid: true, action: () => { throw v } }
    case 1: return { valid: true, action: () => Promise.reject(v) }
    case 2: return { valid: true, action: () => 'value' }
    case 3: return { valid: true, action: () => v } // returns odd values, incl. a throwing proxy
    case 4: return { valid: true, action: () => ({ then(res, rej) { res(1); res(2); rej(v) } }) }
    case 5: return { valid: true, action: () => ({ then(res, rej) { rej(v); res(1); rej(2) } }) }
    case 6: return { valid: true, action: () => ({ then() { throw v } }) }
    case 7: return { valid: true, action: () => ({ get then() { throw v } }) }
    case 8: return { valid: true, hangs: true, action: () => new Promise(() => {}) } // never settles
    case 9: return { valid: true, action: Promise.resolve('already') }
    case 10: { const p = Promise.reject(v); return { valid: true, action: p } }
    case 11: return { valid: true, action: { then(res) { res('thenable') } } }
    case 12: return { valid: true, action: { then(res, rej) { rej(v); res(1) } } }
    case 13: return { valid: true, action: async (signal) => { await null; if (signal.aborted) throw v; return signal.aborted } }
    case 14: return { valid: true, action: new Proxy(() => 'proxied', {}) }
    case 15: return { valid: true, action: new Proxy(() => 'p', { get(t, k) { if (k === 'length') throw new Error('length trap'); return Reflect.get(t, k) } }) }
    case 16: { const { proxy, revoke } = Proxy.revocable(() => 1, {}); revoke(); return { valid: true, action: proxy } }
    case 17: return { valid: true, action: () => new Promise((res) => setTimeout(res, g.int(0, 3), 'later')) }
    case 18: { const o = {}; Object.defineProperty(o, 'then', { get() { throw v } }); return { valid: 'maybe', action: o } } // throwing then getter
    case 19: { const { proxy, revoke } = Proxy.revocable({}, {}); revoke(); return { valid: 'maybe', action: proxy } }
    default: return { valid: false, action: g.pick([undefined, null, 42, 'str', {}, [], SYMBOL, 10n, true, { then: 5 }, NaN]) }
  }
}

function randomExecOptions(g) {
  if (g.chance(0.85)) return undefined
  return g.pick([
    () => ({ bypass: true }),
    () => ({ timeout: g.pick([0, 1, 5, -1, NaN, 'x', 2 ** 31]) }),
    () => randomValue(g),
    () => ({ get bypass() { throw new Error('bypass getter') } }),
    () => hostileProxy(g),
  ])()
}

test('fuzz: execute() with random arguments always returns a promise, never throws synchronously, counts each call once', async (t) => {
  const seen = watchProcess(t)
  const configs = [
    { timeout: 0 },
    { timeout: 5 },
    { timeout: 0, fallback: (e) => 'fallback' },
    { timeout: 5, fallback: () => { throw new Error('fallback threw') } },
    { timeout: 0, isFailure: (e) => e instanceof Error },
    { timeout: 5, isFailure: () => { throw new Error('isFailure threw') }, fallback: async () => 'async fb' },
    { timeout: 0, consecutiveFailures: 3, resetTimeout: 5 },
    { timeout: 5, consecutiveFailures: 2, resetTimeout: 3, halfOpenMaxRequests: 2, slowCallDurationMs: 1 },
    { timeout: 0, shouldTrip: (c) => c.failures > 5, resetTimeout: 5 },
    { timeout: 0, enabled: false },
  ]
  const breakers = configs.map((c) => ({ b: new CircuitBreaker({ name: uniq('fuzz-exec'), logger: null, ...c }), c, valid: 0, events: 0 }))
  for (const x of breakers) {
    x.b.on('failure', () => { x.events++ })
    x.b.on('success', () => { x.events++ })
  }
  const oddities = []
  await fuzz(t, 'execute', async (g) => {
    const x = g.pick(breakers)
    const { valid, action, hangs } = randomAction(g)
    const eo = randomExecOptions(g)
    if (valid === false && typeof action !== 'function') {
      // an invalid action is refused whatever the options
    }
    // What execute() should make of its options: 'none', 'bypass', 'ok' or 'bad' (not an
    // object, a getter that throws, an invalid timeout: the call is refused, not run).
    let eoKind = eo === undefined ? 'none' : 'bad'
    try {
      if (eo !== null && typeof eo === 'object') {
        if (eo.bypass === true) eoKind = 'bypass'
        else {
          const to = eo.timeout
          if (to === undefined || (typeof to === 'number' && to >= 0 && to <= 2 ** 31 - 1)) eoKind = 'ok'
        }
      }
    } catch {}
    let isPromise = false
    try { isPromise = action instanceof Promise } catch {}
    void isPromise // bug D (fixed): with bad options the library itself marks the promise handled
    let p
    try {
      p = eo === undefined ? x.b.execute(action) : x.b.execute(action, eo)
    } catch (e) {
      oddities.push(`execute threw synchronously: ${describe(e)} (action ${valid === 'maybe' ? 'with a throwing then' : typeof action})`)
      return
    }
    assert.ok(p instanceof Promise, 'execute returned a promise')
    const mayHang = hangs && (x.c.timeout === 0 || eo !== undefined)
    const r = await settleWithin(p, mayHang ? 30 : 1_000)
    if (!r.settled && mayHang) return // no timeout in force (config or options): pending for ever, counted nowhere yet
    if (!r.settled) {
      // only an action that never settles, with no timeout, may leave the call pending
      throw new Error(`execute did not settle (config ${JSON.stringify(x.c)}, options ${typeof eo})`)
    }
    if (eoKind === 'bad') {
      assert.equal(r.ok, false, 'bad execute options are refused')
      return
    }
    if (eoKind === 'bypass') return // runs the action, records nothing
    if (valid === 'maybe' && r.ok === false && r.error instanceof TypeError && /execute/.test(r.error.message)) return // bug E fixed: refused, not run
    if (valid === false) {
      assert.ok(r.ok === false && r.error instanceof TypeError && /execute/.test(r.error.message), `a non-action was accepted: ${r.ok ? 'resolved' : describe(r.error)}`)
      return
    }
    if (valid === false) throw new Error(`a non-action was accepted: ${r.ok ? 'resolved' : describe(r.error)}`)
    x.valid++
    if (r.ok === false && r.error instanceof CircuitBreakerTimeoutError) assert.ok(x.c.timeout > 0 || eo !== undefined)
  })
  await sleep(50)
  for (const x of breakers) {
    const s = x.b.getStats()
    assertStats(s, x.b)
    if (s.totalRequests !== x.valid) oddities.push(`${JSON.stringify(x.c)}: ${x.valid} calls, totalRequests ${s.totalRequests}`)
    x.b.dispose()
  }
  assert.deepEqual(seen.map(([k, e]) => `${k}: ${describe(e)}`), [], 'no unhandled rejection or uncaught exception')
  assert.deepEqual(oddities.slice(0, 10), [])
})

// ---- known bugs, found by the fuzz tests above ------------------------------------------
// Each is pinned as a `todo` test (reported, not failing the suite); the fuzz tests count the
// matching failures as known (letters A-G above) and keep going.

test('E: execute() on an object whose then getter throws, or a revoked Proxy, rejects instead of throwing synchronously', async () => {
  const b = new CircuitBreaker({ name: uniq('fuzz-bug-e'), logger: null, timeout: 0 })
  const action = {}
  Object.defineProperty(action, 'then', { get() { throw new Error('then getter') } })
  let p
  assert.doesNotThrow(() => { p = b.execute(action) })
  await assert.rejects(p)
  const { proxy, revoke } = Proxy.revocable({}, {})
  revoke()
  assert.doesNotThrow(() => { p = b.execute(proxy) })
  await assert.rejects(p, TypeError)
})

test('D: execute(rejectedPromise, badOptions) marks the promise handled (no unhandledRejection)', async () => {
  const b = new CircuitBreaker({ name: uniq('fuzz-bug-d'), logger: null, timeout: 0 })
  const unhandled = []
  const on = (e) => unhandled.push(e)
  process.on('unhandledRejection', on)
  try {
    for (const bad of [5, null, { timeout: -1 }, { timeout: 'x' }, { get bypass() { throw new Error('getter') } }]) {
      const action = Promise.reject(new Error('the action failed'))
      await assert.rejects(b.execute(action, bad))
    }
    await sleep(20)
  } finally {
    process.off('unhandledRejection', on)
  }
  assert.deepEqual(unhandled.map((e) => e.message), [])
})

test('A: an options object that is a hostile Proxy gives a TypeError naming the options', () => {
  const throwing = new Proxy({}, { ownKeys() { throw new Error('ownKeys trap') } })
  assert.throws(() => new CircuitBreaker(throwing), (e) => e instanceof TypeError && /option/.test(e.message))
  const { proxy, revoke } = Proxy.revocable({ name: uniq('fuzz-bug-a') }, {})
  revoke()
  assert.throws(() => new CircuitBreaker(proxy), (e) => e instanceof TypeError && /breakwater/.test(e.message))
})

test('B: an option value that is a revoked Proxy gives an error naming the option', () => {
  for (const key of ['fallback', 'isFailure', 'enabled', 'timeout', 'window', 'initialState']) {
    const { proxy, revoke } = Proxy.revocable({}, {})
    revoke()
    assert.throws(() => new CircuitBreaker({ name: uniq('fuzz-bug-b'), logger: null, [key]: proxy }), (e) => (e instanceof TypeError || e instanceof RangeError) && e.message.includes(key), key)
  }
})

test('G: a logger whose method getter throws gives a TypeError naming logger', () => {
  for (const thrown of [new Error('getter'), 'a string', undefined]) {
    const logger = {}
    Object.defineProperty(logger, 'info', { enumerable: true, get() { throw thrown } })
    assert.throws(() => new CircuitBreaker({ name: uniq('fuzz-bug-g'), logger }), (e) => e instanceof TypeError && /logger/.test(e.message))
  }
})

test('C: a fractional resetTimeout is kept (or refused), not silently truncated; breakers that differ in it do not share a circuit', () => {
  const name = uniq('fuzz-bug-c')
  let b
  try {
    b = new CircuitBreaker({ name, logger: null, resetTimeout: 0.7 })
  } catch (e) {
    assert.ok(e instanceof RangeError && /resetTimeout/.test(e.message), String(e))
    return // refused: fine
  }
  assert.equal(b.getStats().resetTimeout, 0.7)
  assert.throws(() => new CircuitBreaker({ name, logger: null, resetTimeout: 0.2 }), /resetTimeout/)
})

test('F: initialState.nextAttemptAt beyond what the core can hold is refused (or kept), not clamped', () => {
  let b
  try {
    b = new CircuitBreaker({ name: uniq('fuzz-bug-f'), logger: null, initialState: { state: 'OPEN', nextAttemptAt: 1e300 } })
  } catch (e) {
    assert.ok(e instanceof TypeError && /initialState\.nextAttemptAt/.test(e.message))
    return
  }
  assert.equal(b.getStats().nextAttemptAt, 1e300)
})

// ---- 5. random sequences of control calls ---------------------------------------------------

test('fuzz: random sequences of control calls never throw except the documented errors, and state follows them', async (t) => {
  const seen = watchProcess(t)
  const configs = [
    { timeout: 0, consecutiveFailures: 2, resetTimeout: 2 },
    { timeout: 0, failureThreshold: 0.5, minimumRequests: 2, window: { type: 'count', size: 4 }, resetTimeout: 1, halfOpenMaxRequests: 2, successThreshold: 2 },
    { timeout: 0, consecutiveFailures: 1, resetTimeout: 60_000, halfOpenTimeout: 60_000 },
    { timeout: 3, consecutiveFailures: 3, resetTimeout: 1 },
  ]
  let ops = 0
  await fuzz(t, 'control', async (g) => {
    const c = g.pick(configs)
    const name = uniq('fuzz-ctl')
    const mk = () => new CircuitBreaker({ name, logger: null, ...c })
    const inst = [mk(), mk()]
    let disposed = false
    // forced: open() without a duration holds OPEN until close/halfOpen/reset
    let forced = false
    let lastTotal = 0
    const steps = g.int(5, 20)
    for (let k = 0; k < steps; k++) {
      ops++
      const b = g.pick(inst)
      const op = g.pick(['open', 'openMs', 'openBad', 'close', 'halfOpen', 'reset', 'dispose', 'getStats', 'state', 'toJSON', 'ok', 'fail', 'new', 'sleep'])
      try {
        switch (op) {
          case 'open': b.open(); forced = true; break
          case 'openMs': b.open(g.pick([0, 1, 2, 50, 60_000])); forced = false; break
          case 'openBad': {
            const bad = g.pick([-1, NaN, 'x', 2 ** 31, Infinity, null, {}])
            try {
              b.open(bad)
              throw new Error(`open(${String(bad)}) accepted`)
            } catch (e) {
              if (e.code === 'BREAKWATER_DISPOSED') throw e
              assertOptionError(e, ['resetTimeout', 'open'], `open(${String(bad)})`)
            }
            break
          }
          case 'close': b.close(); forced = false; break
          case 'halfOpen': b.halfOpen(); forced = false; break
          case 'reset': b.reset(); forced = false; lastTotal = 0; break
          case 'dispose': b.dispose(); disposed = true; break
          case 'getStats': assertStats(b.getStats(), b); break
          case 'state': assert.ok(['CLOSED', 'OPEN', 'HALF_OPEN'].includes(b.state)); break
          case 'toJSON': JSON.stringify(b.toJSON()); break
          case 'ok': case 'fail': {
            let ran = false
            const r = await settleWithin(b.execute(() => { ran = true; return op === 'ok' ? 1 : Promise.reject(new Error('f')) }), 1_000)
            assert.ok(r.settled)
            if (!ran) {
              const e = r.error
              assert.ok(e instanceof CircuitBreakerOpenError || (e && e.code === 'BREAKWATER_DISPOSED'), describe(e))
              if (forced && !disposed) assert.ok(e instanceof CircuitBreakerOpenError && e.retryAfterMs === null)
            }
            break
          }
          case 'new':
            // after dispose the name is free: a new instance starts a new circuit
            if (disposed) { inst.length = 0; inst.push(mk(), mk()); disposed = false; forced = false; lastTotal = 0 } else inst.push(mk())
            break
          case 'sleep': await sleep(g.int(0, 3)); break
        }
      } catch (e) {
        if (disposed && e && e.code === 'BREAKWATER_DISPOSED' && ['open', 'openMs', 'openBad', 'close', 'halfOpen', 'reset', 'getStats'].includes(op)) continue
        throw new Error(`op ${op} (step ${k}, disposed ${disposed}): ${describe(e)}`)
      }
      if (disposed) {
        // a disposed breaker still answers state, and rejects calls
        for (const x of inst) assert.ok(['CLOSED', 'OPEN', 'HALF_OPEN'].includes(x.state))
        continue
      }
      // invariants after every step, through every instance
      const states = inst.map((x) => x.state)
      if (forced) assert.ok(states.every((s) => s === 'OPEN'), `forced open, read ${states} after ${op}`)
      if (op === 'close' || op === 'reset') assert.ok(states.every((s) => s === 'CLOSED'), `${op} -> ${states}`)
      if (op === 'halfOpen') assert.ok(states.every((s) => s === 'HALF_OPEN'), `${op} -> ${states}`)
      if (op === 'openMs' || op === 'open') assert.ok(states.every((s) => s === 'OPEN' || s === 'HALF_OPEN'), `${op} -> ${states}`)
      const s = inst[0].getStats()
      assertStats(s, inst[0])
      if (op === 'reset') assert.equal(s.totalRequests, 0)
      assert.ok(s.totalRequests >= lastTotal, 'counters never go backwards except at reset()')
      lastTotal = s.totalRequests
      if (forced) assert.equal(s.retryAfterMs, null)
      for (const x of inst) assert.deepEqual(x.getStats().totalRequests, s.totalRequests, 'every instance sees the same circuit')
    }
    for (const x of inst) x.dispose()
  })
  assert.deepEqual(seen, [])
  t.diagnostic(`${ops} control operations`)
})
