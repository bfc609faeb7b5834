'use strict'
// Module-level functions over every circuit of the process (all threads).

const S = require('./shared.js')
const { native } = S
const { CircuitBreaker, statsObject, localNamed, syncAll, nameOf, pruneNames, isEnabled } = require('./breaker.js')
const options = require('./options.js')

/** @returns {Record<string, object>} every registered circuit's stats, by name */
function getAllCircuitBreakerStats() {
  const out = {}
  eachCircuit((name, data, o) => {
    const s = statsObject(name, data, o, isEnabled(name))
    // A circuit may be called '__proto__': define it, don't assign it.
    if (name === '__proto__') Object.defineProperty(out, name, { value: s, enumerable: true, writable: true, configurable: true })
    else out[name] = s
  })
  return out
}

// The rows of every circuit, refilled in place by native code on each read (kept between
// calls: a fresh 350 KB array per read of 1,000 circuits cost as much as computing them).
// Made by the first read: a row's length is known once the binary is loaded (lib/shared.js).
let rows = null
let STATS_LEN = 0
S.whenLoaded(() => {
  STATS_LEN = S.STATS_LEN
  rows = new Float64Array(STATS_LEN * 64)
})

/** Every circuit's stats rows; returns how many numbers of `rows` are filled. */
function readRows() {
  if (rows === null) S.load()
  let n = native.allStatsInto(rows)
  while (n > rows.length) {
    rows = new Float64Array(Math.ceil((n * 1.25) / STATS_LEN) * STATS_LEN)
    n = native.allStatsInto(rows)
  }
  // Names of disposed circuits must not pile up (a circuit per tenant, for days).
  const data = rows
  pruneNames(n / STATS_LEN, (i) => data[i * STATS_LEN + STATS_LEN - 1])
  return n
}

/** Calls `f(name, data, offset, index)` for every registered circuit, from one native read. */
function eachCircuit(f) {
  const n = readRows()
  const data = rows
  for (let o = 0, i = 0; o < n; o += STATS_LEN, i++) {
    const name = nameOf(data[o + STATS_LEN - 2], data[o + STATS_LEN - 1])
    if (name !== undefined) f(name, data, o, i)
  }
}

/** The breaker registered under `name` (attached in this thread if made in another), or undefined. */
function getCircuitBreaker(name) {
  if (typeof name !== 'string') throw new TypeError(`breakwater: getCircuitBreaker(name) needs a string, got ${options.show(name)}`)
  const local = localNamed(name)
  if (local !== undefined) return local
  return CircuitBreaker._existing(name)
}

/** Every circuit back to CLOSED with an empty window and zeroed counters; all stay registered. */
function resetAllCircuitBreakers() {
  native.resetAll()
  syncAll()
}

function getHealthSummary() {
  const n = readRows()
  const data = rows
  let closed = 0
  let open = 0
  let halfOpen = 0
  for (let o = 0; o < n; o += STATS_LEN) {
    const s = data[o]
    if (s === 0) closed++
    else if (s === 1) open++
    else halfOpen++
  }
  return { total: closed + open + halfOpen, closed, open, halfOpen, health: open + halfOpen > 0 ? 'degraded' : 'healthy' }
}

/**
 * The preset for third-party APIs: 50% of at least 10 calls, 30 s timeout, 60 s reset.
 * @param {string} name
 * @param {(error: unknown) => unknown} [fallback]
 * @param {object} [opts] any other option; these win over the preset
 */
function createExternalServiceCircuitBreaker(name, fallback, opts) {
  if (fallback !== undefined && fallback !== null && typeof fallback !== 'function') {
    throw new TypeError(`breakwater: createExternalServiceCircuitBreaker(name, fallback): fallback must be a function, got ${options.show(fallback)}`)
  }
  return new CircuitBreaker({
    failureThreshold: 0.5,
    minimumRequests: 10,
    timeout: 30_000,
    resetTimeout: 60_000,
    ...(fallback ? { fallback } : {}),
    ...(opts || {}),
    name,
  })
}

// Prometheus-style latency buckets (seconds). Our histogram's bins are finer (4 per power of
// two); a bucket counts the bins whose upper edge is at or below its bound.
const LATENCY_BUCKETS_S = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
let binEdgesS = null

/**
 * For metrics exporters: every circuit's stats, transition counts and cumulative latency
 * histogram, taken together.
 * @returns {Array<{ name: string, stats: object, transitions: Array<{from: string, to: string, count: number}>,
 *   latency: { count: number, sumSeconds: number, buckets: Array<{ le: number, count: number }> } }>}
 */
function metricsSnapshot() {
  syncAll()
  if (binEdgesS === null) binEdgesS = native.latencyBinEdges().map((us) => us / 1e6)
  const per = 2 + binEdgesS.length
  const states = ['CLOSED', 'OPEN', 'HALF_OPEN']
  for (let attempt = 0; ; attempt++) {
    const n = readRows() / STATS_LEN
    const data = rows
    const lat = native.allLatency()
    if (lat.length !== n * per && attempt < 3) continue // a circuit came or went between the two reads
    const out = []
    for (let i = 0; i < n; i++) {
      const o = i * STATS_LEN
      const name = nameOf(data[o + STATS_LEN - 2], data[o + STATS_LEN - 1])
      if (name === undefined) continue
      const transitions = []
      for (let f = 0; f < 3; f++) {
        for (let t = 0; t < 3; t++) {
          const count = data[o + 33 + f * 3 + t]
          if (f !== t) transitions.push({ from: states[f], to: states[t], count })
        }
      }
      const lo = i * per
      const buckets = []
      if (lo + per <= lat.length) {
        let bin = 0
        let cum = 0
        for (const le of LATENCY_BUCKETS_S) {
          while (bin < binEdgesS.length && binEdgesS[bin] <= le + 1e-12) cum += lat[lo + 2 + bin++]
          buckets.push({ le, count: cum })
        }
      }
      out.push({
        name,
        stats: statsObject(name, data, o, isEnabled(name)),
        transitions,
        latency: { count: lat[lo] || 0, sumSeconds: (lat[lo + 1] || 0) / 1e6, buckets },
      })
    }
    return out
  }
}

module.exports = {
  metricsSnapshot,
  getAllCircuitBreakerStats, getCircuitBreaker, resetAllCircuitBreakers, getHealthSummary,
  createExternalServiceCircuitBreaker,
}
