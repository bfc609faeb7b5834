'use strict'
// Module-level functions over every circuit of the process (all threads).

const { native, STATS_LEN } = require('./shared.js')
const { CircuitBreaker, statsObject, byCircuit, byName } = require('./breaker.js')
const options = require('./options.js')

/** @returns {Record<string, object>} every registered circuit's stats, by name */
function getAllCircuitBreakerStats() {
  const { names, data } = native.allStats()
  const out = {}
  for (let i = 0; i < names.length; i++) {
    const local = byName.get(names[i])
    out[names[i]] = statsObject(names[i], data, i * STATS_LEN, local ? local.enabled : true)
  }
  for (const list of byCircuit.values()) for (const b of list) b._sync(false)
  return out
}

/** The breaker registered under `name` (attached in this thread if made in another), or undefined. */
function getCircuitBreaker(name) {
  if (typeof name !== 'string') throw new TypeError(`breakwater: getCircuitBreaker(name) needs a string, got ${options.show(name)}`)
  const local = byName.get(name)
  if (local !== undefined && !local._disposed) return local
  return CircuitBreaker._existing(name)
}

/** Every circuit back to CLOSED with an empty window and zeroed counters; all stay registered. */
function resetAllCircuitBreakers() {
  native.resetAll()
  for (const list of byCircuit.values()) for (const b of list) b._sync(true)
}

function getHealthSummary() {
  const { data, names } = native.allStats()
  let closed = 0
  let open = 0
  let halfOpen = 0
  for (let i = 0; i < names.length; i++) {
    const s = data[i * STATS_LEN]
    if (s === 0) closed++
    else if (s === 1) open++
    else halfOpen++
  }
  return { total: names.length, closed, open, halfOpen, health: open + halfOpen > 0 ? 'degraded' : 'healthy' }
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

module.exports = {
  getAllCircuitBreakerStats, getCircuitBreaker, resetAllCircuitBreakers, getHealthSummary,
  createExternalServiceCircuitBreaker,
}
