'use strict'
// An HTTP endpoint over the registry: GET the stats of every circuit or of one, POST to reset
// one circuit or all (with a bearer token). One router, two front ends: node:http / Express
// `(req, res, next)`, and API Gateway's Lambda proxy integration `(event) => result`.

const crypto = require('node:crypto')
const { getCircuitBreaker, resetAllCircuitBreakers, getHealthSummary, metricsSnapshot } = require('../registry.js')

// Built with Object.fromEntries so that any name (even '__proto__') is an own key.
const allStats = () => Object.fromEntries(metricsSnapshot().map((c) => [c.name, c.stats]))

const MALFORMED = Symbol('malformed path')

const digest = (value) => crypto.createHash('sha256').update(value).digest()

/**
 * @param {{ resetToken?: string, basePath?: string }} [options]
 *   `resetToken`: the bearer token POST requests need (without it, reset answers 403).
 *   `basePath` (default '/stats'): where the routes live:
 *   GET  {basePath}               -> { health, circuits: { name: stats } }
 *   GET  {basePath}/{name}        -> stats of one circuit (404 if unknown)
 *   POST {basePath}/reset         -> resets every circuit
 *   POST {basePath}/{name}/reset  -> resets one circuit (404 if unknown)
 */
function createStatsHandler(options) {
  const where = 'createStatsHandler(options)'
  const opts = options === undefined || options === null ? {} : options
  if (typeof opts !== 'object') throw new TypeError(`breakwater: ${where}: options must be an object`)
  if (opts.resetToken !== undefined && (typeof opts.resetToken !== 'string' || opts.resetToken.length === 0)) {
    throw new TypeError(`breakwater: ${where}: resetToken must be a non-empty string`)
  }
  const basePath = opts.basePath ?? '/stats'
  if (typeof basePath !== 'string' || !/^\/[^?#]*$/.test(basePath)) throw new TypeError(`breakwater: ${where}: basePath must be a path starting with '/', got ${JSON.stringify(basePath)}`)
  const base = basePath.length > 1 ? basePath.replace(/\/+$/, '') : ''
  const tokenDigest = opts.resetToken !== undefined ? digest(opts.resetToken) : null

  function authorized(header) {
    if (typeof header !== 'string') return false
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
    if (!m) return false
    // equal-length digests: the comparison takes the same time whatever the token's length
    return crypto.timingSafeEqual(digest(m[1]), tokenDigest)
  }

  /**
   * The path's segments after `base` when it is one of our routes -- `base`, `base/{name}`,
   * `base/reset`, `base/{name}/reset`, each with or without one trailing slash -- else null.
   * Exact on purpose: the handler is mounted in front of an app's own routes
   * (`app.use(stats)`), and `/users/42/stats` or `/api/stats?range=7d` are the app's.
   */
  function ownPath(rawPath) {
    const path = rawPath.split(/[?#]/, 1)[0]
    if (path !== base && !path.startsWith(base + '/')) return null
    let rest = path.slice(base.length)
    if (rest.endsWith('/')) rest = rest.slice(0, -1)
    if (rest === '') return []
    const m = /^\/([^/]+)(\/reset)?$/.exec(rest)
    if (m === null) return null
    try {
      const name = decodeURIComponent(m[1])
      return m[2] ? [name, 'reset'] : [name]
    } catch {
      return MALFORMED
    }
  }

  /**
   * @returns {null | { status: number, body: unknown, headers?: Record<string, string> }}
   *   null when the path is not ours
   */
  function route(method, rawPath, authorization) {
    const parts = ownPath(rawPath)
    if (parts === null) return null
    if (parts === MALFORMED) return { status: 400, body: { error: 'malformed path' } }
    if (method === 'HEAD') method = 'GET'
    // GET /  |  GET /{name}  |  POST /reset  |  POST /{name}/reset
    const resetAll = parts.length === 1 && parts[0] === 'reset'
    const resetOne = parts.length === 2
    const allow = resetAll ? 'GET, HEAD, POST' : resetOne ? 'POST' : 'GET, HEAD'
    const notAllowed = { status: 405, body: { error: 'method not allowed' }, headers: { Allow: allow } }

    if (method === 'POST') {
      if (!resetAll && !resetOne) return notAllowed
      if (tokenDigest === null) return { status: 403, body: { error: 'reset is disabled: no resetToken configured' } }
      if (!authorized(authorization)) {
        return { status: 401, body: { error: 'a valid bearer token is required' }, headers: { 'WWW-Authenticate': 'Bearer realm="breakwater"' } }
      }
      if (resetAll) {
        resetAllCircuitBreakers()
        return { status: 200, body: { reset: 'all', circuits: allStats() } }
      }
      const breaker = getCircuitBreaker(parts[0])
      if (!breaker) return { status: 404, body: { error: 'unknown circuit' } }
      breaker.reset()
      return { status: 200, body: breaker.getStats() }
    }
    if (method !== 'GET' || resetOne) return notAllowed
    if (parts.length === 0) return { status: 200, body: { health: getHealthSummary(), circuits: allStats() } }
    const breaker = getCircuitBreaker(parts[0])
    if (!breaker) return { status: 404, body: { error: 'unknown circuit' } }
    return { status: 200, body: breaker.getStats() }
  }

  function safeRoute(method, path, authorization) {
    try {
      return route(String(method || 'GET').toUpperCase(), String(path || '/'), authorization)
    } catch {
      return { status: 500, body: { error: 'internal error' } } // never a stack trace
    }
  }

  const baseHeaders = {
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  }

  /**
   * node:http request listener, or Express/Connect middleware (calls next() for other paths).
   * Routes on `req.url`, which Express makes relative to the mount point: `app.use(stats)`
   * serves /stats, `app.use('/admin', stats)` serves /admin/stats.
   */
  function handler(req, res, next) {
    const r = safeRoute(req.method, req.url, req.headers && req.headers.authorization)
    if (r === null) {
      if (typeof next === 'function') return next()
      return send(res, req, { status: 404, body: { error: 'not found' } })
    }
    if (typeof req.resume === 'function') req.resume() // we never read a body: drain it
    send(res, req, r)
  }

  function send(res, req, r) {
    const body = JSON.stringify(r.body)
    res.writeHead(r.status, { ...baseHeaders, ...r.headers, 'Content-Length': Buffer.byteLength(body) })
    res.end(String(req.method).toUpperCase() === 'HEAD' ? undefined : body)
  }

  // An HTTP API's rawPath starts with the stage's name (except for the $default stage); a
  // REST API's path never holds it.
  function withoutStage(path, stage) {
    if (typeof stage !== 'string' || stage === '' || stage === '$default') return path
    const prefix = `/${stage}`
    return path === prefix || path.startsWith(prefix + '/') ? path.slice(prefix.length) || '/' : path
  }

  /** API Gateway Lambda proxy handler (REST API v1 and HTTP API v2 payloads). */
  handler.apiGateway = async function apiGateway(event) {
    const e = event && typeof event === 'object' ? event : {}
    const method = e.httpMethod || (e.requestContext && e.requestContext.http && e.requestContext.http.method) || 'GET'
    const path = withoutStage(e.rawPath || e.path || '/', e.requestContext && e.requestContext.stage)
    let authorization
    for (const [k, v] of Object.entries(e.headers || {})) if (k.toLowerCase() === 'authorization') authorization = v
    const r = safeRoute(method, path, authorization) || { status: 404, body: { error: 'not found' } }
    return {
      statusCode: r.status,
      headers: { ...baseHeaders, ...r.headers },
      body: String(method).toUpperCase() === 'HEAD' ? '' : JSON.stringify(r.body),
      isBase64Encoded: false,
    }
  }
  return handler
}

module.exports = { createStatsHandler }
