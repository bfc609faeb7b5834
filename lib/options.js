'use strict'
// Options: validation with errors that name the option and the value, process-wide defaults
// (`configure`), and the CIRCUIT_BREAKER_* environment variables.
// Precedence: explicit option > configure() > environment > built-in default.

const BUILTIN = Object.freeze({
  failureThreshold: 0.5,
  minimumRequests: 10,
  consecutiveFailures: 0,
  slowCallDurationMs: 0,
  slowCallRateThreshold: 0,
  timeout: 30_000,
  resetTimeout: 60_000,
  halfOpenMaxRequests: 1,
  successThreshold: 1,
  halfOpenTimeout: 0,
  window: Object.freeze({ type: 'time', durationMs: 60_000, buckets: 10 }),
  enabled: true,
})

// setTimeout's ceiling; also keeps every duration exact in a double.
const MAX_MS = 2_147_483_647

const NUMERIC = ['failureThreshold', 'minimumRequests', 'consecutiveFailures', 'slowCallDurationMs',
  'slowCallRateThreshold', 'timeout', 'resetTimeout', 'halfOpenMaxRequests', 'successThreshold', 'halfOpenTimeout']
const FUNCTIONS = ['fallback', 'isFailure', 'shouldTrip', 'onStateChange']
const KNOWN = new Set(['name', ...NUMERIC, 'window', 'enabled', 'logger', 'initialState', 'store', 'resetBackoff', ...FUNCTIONS])
const CONFIGURABLE = new Set([...NUMERIC, 'window', 'enabled', 'logger', 'store', 'resetBackoff'])
const HINTS = {
  // Option names of opossum 10 and cockatiel 4, with what to write here (README: "Coming from
  // opossum or cockatiel"). A migrated option fails loudly rather than being silently ignored.
  errorThresholdPercentage: "use failureThreshold (a fraction: 50% is 0.5)",
  volumeThreshold: 'use minimumRequests',
  halfOpenAfter: 'use resetTimeout (resetBackoff for a growing open period)',
  rollingCountTimeout: "use window: { type: 'time', durationMs }",
  rollingCountBuckets: "use window: { type: 'time', durationMs, buckets }",
  errorFilter: 'use isFailure, its inverse: errorFilter: (e) => e.status === 404 becomes isFailure: (e) => e.status !== 404',
  maxFailures: 'use consecutiveFailures (opens after that many failures in a row)',
  breaker: "cockatiel's breaker: use consecutiveFailures (ConsecutiveBreaker), or failureThreshold with minimumRequests and window: { type: 'count', size } (CountBreaker) or { type: 'time', durationMs } (SamplingBreaker)",
  halfOpenSampling: 'use halfOpenMaxRequests and successThreshold',
  allowWarmUp: 'no equivalent needed: a circuit cannot open before its window holds minimumRequests calls',
  capacity: 'no equivalent: limit concurrency with a semaphore (a bulkhead) around execute',
  abortController: 'the action gets an AbortSignal that aborts on timeout: execute((signal) => fetch(url, { signal }))',
  autoRenewAbortController: 'each call gets its own AbortSignal: execute((signal) => ...)',
  rollingPercentilesEnabled: 'no option: latency percentiles are always kept (getStats().latencyMs)',
  enableSnapshots: 'no equivalent needed: breakwater runs no timers; read getStats() when you need numbers',
  rotateBucketController: 'no equivalent needed: breakwater runs no timers',
  ...Object.fromEntries(['cache', 'cacheTTL', 'cacheSize', 'cacheGetKey', 'cacheTransport', 'coalesce', 'coalesceTTL', 'coalesceSize', 'coalesceResetOn']
    .map((k) => [k, 'no equivalent: cache or coalesce in your action or fallback'])),
  status: 'no equivalent: stats live in the circuit (getStats(), getAllCircuitBreakerStats())',
  group: 'no equivalent: name circuits like "payments.stripe" and filter on the name',
}

function show(v) {
  try {
    if (typeof v === 'string') return JSON.stringify(v.length > 60 ? v.slice(0, 60) + '\u2026' : v)
    if (typeof v === 'function') return 'a function'
    if (v === null) return 'null'
    if (typeof v === 'object') return Array.isArray(v) ? 'an array' : 'an object'
    if (typeof v === 'symbol') return 'a symbol'
    return String(v)
  } catch {
    return 'an unreadable value' // a revoked Proxy, say
  }
}

function num(name, v, { min = 0, max = MAX_MS, int = false, minExclusive = false, unit = '' } = {}) {
  if (typeof v !== 'number' || Number.isNaN(v)) {
    throw new TypeError(`breakwater: option ${name} must be a number${unit}, got ${show(v)}`)
  }
  if (int && !Number.isInteger(v)) {
    throw new RangeError(`breakwater: option ${name} must be a whole number, got ${show(v)}`)
  }
  if (v < min || (minExclusive && v === min) || v > max) {
    const lo = minExclusive ? `greater than ${min}` : `at least ${min}`
    throw new RangeError(`breakwater: option ${name} must be ${lo} and at most ${max}${unit}, got ${show(v)}`)
  }
  return v
}

/** Validates one option; returns the value to use. */
function check(name, v) {
  switch (name) {
    case 'failureThreshold':
      if (typeof v === 'number' && v > 1 && Number.isFinite(v)) {
        throw new RangeError(`breakwater: option failureThreshold must be a fraction in (0, 1] (0.5 = 50%), got ${v}; to open after a number of failures in a row, use consecutiveFailures`)
      }
      return num(name, v, { min: 0, max: 1, minExclusive: true })
    case 'slowCallRateThreshold':
      if (v === 0) return 0
      return num(name, v, { min: 0, max: 1, minExclusive: true })
    case 'minimumRequests': case 'halfOpenMaxRequests': case 'successThreshold':
      return num(name, v, { min: 1, max: 1_000_000_000, int: true })
    case 'consecutiveFailures':
      return num(name, v, { min: 0, max: 1_000_000_000, int: true })
    case 'timeout': case 'slowCallDurationMs':
      if (v === false) throw new TypeError(`breakwater: option ${name} must be a number (ms), got false; 0 means none (opossum's timeout: false)`)
      return num(name, v, { min: 0, max: MAX_MS, unit: ' (ms)' })
    case 'resetTimeout': case 'halfOpenTimeout':
      // The circuit keeps these in whole ms: refuse a fraction rather than truncate it.
      return num(name, v, { min: 0, max: MAX_MS, int: true, unit: ' (ms)' })
    case 'window': return checkWindow(v)
    case 'resetBackoff': return checkBackoff(v)
    case 'enabled':
      if (typeof v !== 'boolean') throw new TypeError(`breakwater: option enabled must be true or false, got ${show(v)}`)
      return v
    case 'logger':
      if (v === null) return null
      if (typeof v !== 'object' || !['info', 'warn', 'error', 'log'].some((k) => typeof read(v, k, `logger.${k}`) === 'function')) {
        throw new TypeError(`breakwater: option logger must be null or a console-like object with info/warn/error methods, got ${show(v)}`)
      }
      return v
    case 'initialState': return checkSnapshot(v)
    case 'store': return checkStore(v)
    case 'name':
      if (typeof v !== 'string' || v.length === 0) throw new TypeError(`breakwater: option name is required and must be a non-empty string, got ${show(v)}`)
      if (v.length > 256) throw new RangeError(`breakwater: option name must be at most 256 characters, got ${v.length}`)
      return v
    default:
      if (FUNCTIONS.includes(name)) {
        if (typeof v !== 'function') throw new TypeError(`breakwater: option ${name} must be a function, got ${show(v)}`)
        // A fallback gets one argument, the error. One declaring more was written for opossum,
        // whose fallback gets the call's arguments first: here it would read the error as its
        // first argument and undefined for the error.
        if (name === 'fallback' && v.length >= 2) {
          throw new TypeError(`breakwater: option fallback is called with one argument, the error, got a function of ${v.length} parameters; opossum's fallback(...args, error) becomes fallback: (error) => ..., with the call's arguments taken from where you call execute`)
        }
        return v
      }
      throw new TypeError(`breakwater: unknown option ${name}`)
  }
}

/**
 * A store: fileStore(), redisStore(), or any object with load(name) and save(name, snapshot)
 * (and optionally tryAcquireProbe / releaseProbe). Its own syncIntervalMs / loadTimeoutMs, if
 * it carries them, are checked here too, so a bad one fails at construction.
 */
function checkStore(v) {
  if (v === null) return null
  if (typeof v !== 'object' && typeof v !== 'function') {
    throw new TypeError(`breakwater: option store must be fileStore(), redisStore() or an object with load(name) and save(name, snapshot), got ${show(v)}`)
  }
  for (const m of ['load', 'save']) {
    if (typeof read(v, m, `store.${m}`) !== 'function') {
      throw new TypeError(`breakwater: option store must have a ${m}() method (a store is an object with load(name) and save(name, snapshot)), got ${show(read(v, m, `store.${m}`))} for store.${m}`)
    }
  }
  for (const m of ['tryAcquireProbe', 'releaseProbe', 'subscribe', 'loadSync', 'merge', 'close']) {
    const f = read(v, m, `store.${m}`)
    if (f !== undefined && typeof f !== 'function') throw new TypeError(`breakwater: option store.${m} must be a function when present, got ${show(f)}`)
  }
  const kind = read(v, 'kind', 'store.kind')
  if (kind !== undefined && typeof kind !== 'string') throw new TypeError(`breakwater: option store.kind must be a string when present, got ${show(kind)}`)
  storeTimings(v)
  return v
}

/**
 * A store's `syncIntervalMs` (default 1000) and `loadTimeoutMs` (default 250), checked: the one
 * place for these defaults and limits, used by the built-in stores and for custom ones.
 */
function storeTimings(v) {
  const sync = read(v, 'syncIntervalMs', 'store.syncIntervalMs')
  const load = read(v, 'loadTimeoutMs', 'store.loadTimeoutMs')
  return {
    syncIntervalMs: sync === undefined ? 1_000 : num('store.syncIntervalMs', sync, { min: 10, int: true, unit: ' (ms)' }),
    loadTimeoutMs: load === undefined ? 250 : num('store.loadTimeoutMs', load, { min: 0, int: true, unit: ' (ms)' }),
  }
}

/** A snapshot from toJSON(): { state, forced?, nextAttemptAt? }. */
function checkSnapshot(v) {
  if (v === null || typeof v !== 'object') throw new TypeError(`breakwater: option initialState must be a snapshot from breaker.toJSON() ({ state, nextAttemptAt? }), got ${show(v)}`)
  const state = read(v, 'state', 'initialState.state')
  if (state !== 'CLOSED' && state !== 'OPEN' && state !== 'HALF_OPEN') {
    throw new TypeError(`breakwater: option initialState.state must be 'CLOSED', 'OPEN' or 'HALF_OPEN', got ${show(state)}`)
  }
  const forced = read(v, 'forced', 'initialState.forced')
  if (forced !== undefined && typeof forced !== 'boolean') throw new TypeError(`breakwater: option initialState.forced must be a boolean, got ${show(forced)}`)
  const next = read(v, 'nextAttemptAt', 'initialState.nextAttemptAt')
  // 8.64e15 ms is the last date a Date can hold.
  if (next != null && (typeof next !== 'number' || !Number.isFinite(next) || next < 0 || next > 8.64e15)) {
    throw new TypeError(`breakwater: option initialState.nextAttemptAt must be epoch ms or null, got ${show(next)}`)
  }
  return { state, forced: forced === true, nextAttemptAt: next == null ? null : next }
}

/**
 * `resetBackoff: { multiplier = 2, maxMs = 10 x resetTimeout, jitter = 0 }`; `maxMs` is filled
 * in by `resolve`, which knows resetTimeout. `false` or null: off.
 */
function checkBackoff(v) {
  if (v === null || v === false) return null
  if (typeof v !== 'object' || Array.isArray(v)) {
    throw new TypeError(`breakwater: option resetBackoff must be an object { multiplier?, maxMs?, jitter? }, got ${show(v)}`)
  }
  let keys
  try {
    keys = Object.keys(v)
  } catch (e) {
    throw new TypeError(`breakwater: option resetBackoff could not be read: ${e && e.message}`)
  }
  for (const k of keys) {
    if (k !== 'multiplier' && k !== 'maxMs' && k !== 'jitter') throw new TypeError(`breakwater: unknown option resetBackoff.${k} (known: multiplier, maxMs, jitter)`)
  }
  const multiplier = read(v, 'multiplier', 'resetBackoff.multiplier')
  const maxMs = read(v, 'maxMs', 'resetBackoff.maxMs')
  const jitter = read(v, 'jitter', 'resetBackoff.jitter')
  return {
    multiplier: multiplier === undefined ? 2 : num('resetBackoff.multiplier', multiplier, { min: 1, max: 1000 }),
    maxMs: maxMs === undefined ? undefined : num('resetBackoff.maxMs', maxMs, { min: 0, max: MAX_MS, int: true, unit: ' (ms)' }),
    jitter: jitter === undefined ? 0 : num('resetBackoff.jitter', jitter, { min: 0, max: 1 }),
  }
}

function checkWindow(w) {
  if (w === null || typeof w !== 'object') {
    throw new TypeError(`breakwater: option window must be { type: 'time', durationMs, buckets } or { type: 'count', size }, got ${show(w)}`)
  }
  const type = read(w, 'type', 'window.type')
  if (type === 'count') {
    const size = read(w, 'size', 'window.size')
    return { type: 'count', size: num('window.size', size, { min: 1, max: 1_000_000, int: true }) }
  }
  if (type === 'time') {
    let durationMs = read(w, 'durationMs', 'window.durationMs')
    let buckets = read(w, 'buckets', 'window.buckets')
    durationMs = durationMs === undefined ? 60_000 : num('window.durationMs', durationMs, { min: 1, max: 86_400_000, int: true, unit: ' (ms)' })
    buckets = buckets === undefined ? 10 : num('window.buckets', buckets, { min: 1, max: 1000, int: true })
    if (durationMs < buckets) {
      throw new RangeError(`breakwater: option window.durationMs must be at least 1 ms per bucket, got ${durationMs} ms for ${buckets} buckets`)
    }
    return { type: 'time', durationMs, buckets }
  }
  throw new TypeError(`breakwater: option window.type must be 'time' or 'count', got ${show(type)}`)
}

/** Reads a property, turning a throwing getter into an error that names it. */
function read(obj, key, label = key) {
  try {
    return obj[key]
  } catch (e) {
    throw new TypeError(`breakwater: reading option ${label} threw: ${e && e.message}`)
  }
}

let configured = {}

/** Process-wide (per-thread) defaults for breakers created after this call. */
function configure(defaults) {
  if (defaults === null || typeof defaults !== 'object') throw new TypeError(`breakwater: configure() takes an object of defaults, got ${show(defaults)}`)
  const next = { ...configured }
  for (const key of Object.keys(defaults)) {
    if (!CONFIGURABLE.has(key)) throw new TypeError(`breakwater: configure(): ${key} cannot have a process-wide default (allowed: ${[...CONFIGURABLE].join(', ')})`)
    const v = read(defaults, key)
    if (v === undefined) delete next[key]
    else next[key] = check(key, v)
  }
  configured = next
}

/** For tests: forget configure(). */
function resetConfiguration() {
  configured = {}
}

const ENV = {
  CIRCUIT_BREAKER_ENABLED: 'enabled',
  CIRCUIT_BREAKER_FAILURE_THRESHOLD: 'failureThreshold',
  CIRCUIT_BREAKER_MINIMUM_REQUESTS: 'minimumRequests',
  CIRCUIT_BREAKER_TIMEOUT: 'timeout',
  CIRCUIT_BREAKER_RESET_TIMEOUT: 'resetTimeout',
  CIRCUIT_BREAKER_HALF_OPEN_TIMEOUT: 'halfOpenTimeout',
}

function fromEnv() {
  const out = {}
  for (const [variable, key] of Object.entries(ENV)) {
    const raw = process.env[variable]
    if (raw === undefined || raw.trim() === '') continue
    const s = raw.trim()
    if (key === 'enabled') {
      if (/^(true|1|yes|on)$/i.test(s)) out.enabled = true
      else if (/^(false|0|no|off)$/i.test(s)) out.enabled = false
      else throw new TypeError(`breakwater: environment variable ${variable} must be true or false, got ${show(raw)}`)
      continue
    }
    const v = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(s) ? Number(s) : NaN
    try {
      if (Number.isNaN(v)) throw new TypeError('not a number')
      out[key] = check(key, v)
    } catch (e) {
      const what = key === 'failureThreshold' ? 'a fraction in (0, 1]' : key === 'minimumRequests' ? 'a whole number >= 1' : 'a duration in ms >= 0'
      throw new (e instanceof RangeError ? RangeError : TypeError)(`breakwater: environment variable ${variable} must be ${what}, got ${show(raw)}`)
    }
  }
  return out
}

/**
 * Resolves a breaker's options: validates what the user gave, fills in the rest.
 * @returns {object} every option, plus `functions` and `logger`
 */
function resolve(options) {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`breakwater: new CircuitBreaker(options) needs an options object with a name, got ${show(options)}`)
  }
  const given = {}
  let keys
  try {
    keys = Object.keys(options)
  } catch (e) {
    throw new TypeError(`breakwater: the options object could not be read: ${e && e.message}`)
  }
  for (const key of keys) {
    const v = read(options, key)
    if (v === undefined) continue
    if (!KNOWN.has(key)) {
      throw new TypeError(`breakwater: unknown option ${key}` + (HINTS[key] ? `; ${HINTS[key]}` : ''))
    }
    given[key] = check(key, v)
  }
  if (given.name === undefined) check('name', undefined)
  const out = { ...BUILTIN, ...fromEnv(), ...configured, ...given }
  if (out.slowCallRateThreshold > 0 && !(out.slowCallDurationMs > 0)) {
    throw new RangeError('breakwater: option slowCallRateThreshold needs slowCallDurationMs (the duration above which a call counts as slow)')
  }
  if (!('logger' in out)) out.logger = console
  if (out.resetBackoff) {
    const b = out.resetBackoff
    const maxMs = b.maxMs === undefined ? Math.min(MAX_MS, 10 * out.resetTimeout) : b.maxMs
    if (maxMs < out.resetTimeout) {
      throw new RangeError(`breakwater: option resetBackoff.maxMs must be at least resetTimeout (${out.resetTimeout} ms), got ${maxMs}`)
    }
    out.resetBackoff = { multiplier: b.multiplier, maxMs, jitter: b.jitter }
  }
  return out
}

/** The numeric options the native registry compares between breakers of one name. */
function native(o) {
  const w = o.window
  return {
    failureThreshold: o.failureThreshold,
    minimumRequests: o.minimumRequests,
    consecutiveFailures: o.consecutiveFailures,
    slowCallDurationMs: o.slowCallDurationMs,
    slowCallRateThreshold: o.slowCallRateThreshold,
    timeout: o.timeout,
    resetTimeout: o.resetTimeout,
    halfOpenMaxRequests: o.halfOpenMaxRequests,
    successThreshold: o.successThreshold,
    halfOpenTimeout: o.halfOpenTimeout,
    windowType: w.type,
    windowSize: w.type === 'count' ? w.size : 0,
    windowDurationMs: w.type === 'time' ? w.durationMs : 0,
    windowBuckets: w.type === 'time' ? w.buckets : 0,
    resetBackoffMultiplier: o.resetBackoff ? o.resetBackoff.multiplier : undefined,
    resetBackoffMaxMs: o.resetBackoff ? o.resetBackoff.maxMs : undefined,
    resetBackoffJitter: o.resetBackoff ? o.resetBackoff.jitter : undefined,
  }
}

/** The inverse of `native`, for attaching to a circuit made elsewhere. */
function fromNative(n) {
  return {
    ...BUILTIN,
    failureThreshold: n.failureThreshold,
    minimumRequests: n.minimumRequests,
    consecutiveFailures: n.consecutiveFailures,
    slowCallDurationMs: n.slowCallDurationMs,
    slowCallRateThreshold: n.slowCallRateThreshold,
    timeout: n.timeout,
    resetTimeout: n.resetTimeout,
    halfOpenMaxRequests: n.halfOpenMaxRequests,
    successThreshold: n.successThreshold,
    halfOpenTimeout: n.halfOpenTimeout,
    window: n.windowType === 'count'
      ? { type: 'count', size: n.windowSize }
      : { type: 'time', durationMs: n.windowDurationMs, buckets: n.windowBuckets },
    resetBackoff: n.resetBackoffMultiplier == null ? null : { multiplier: n.resetBackoffMultiplier, maxMs: n.resetBackoffMaxMs, jitter: n.resetBackoffJitter },
  }
}

// The numeric configurations in use, by value: 10,000 breakers with the defaults share one
// object instead of holding a copy each. Bounded, for a process that makes many distinct ones.
const interned = new Map()
const INTERN_MAX = 1024

/**
 * The numeric configuration of resolved options `o` (what native code compares, with the
 * window and resetBackoff as objects), frozen and shared by every breaker of equal value.
 */
function intern(o) {
  const n = native(o)
  const key = JSON.stringify(n)
  let c = interned.get(key)
  if (c === undefined) {
    // (enabled belongs to the instance: a circuit may have enabled and metrics-only ones)
    const { enabled: _, ...cfg } = fromNative(n)
    Object.freeze(cfg.window)
    if (cfg.resetBackoff !== null) Object.freeze(cfg.resetBackoff)
    c = Object.freeze(cfg)
    if (interned.size >= INTERN_MAX) interned.clear()
    interned.set(key, c)
  }
  return c
}

module.exports = { resolve, configure, resetConfiguration, native, fromNative, intern, check, show, num, storeTimings, BUILTIN, MAX_MS }
