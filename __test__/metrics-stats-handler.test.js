'use strict'
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { CircuitBreaker, createStatsHandler } = require('../index.js')
const { uniq, failN, okN } = require('./helpers.js')

const TOKEN = 'reset-token-for-tests-0123456789'
let server
let base

before(async () => {
  const stats = createStatsHandler({ resetToken: TOKEN })
  // an Express-like mount: /admin/* goes to the handler with req.originalUrl kept, others 404
  server = http.createServer((req, res) => {
    if (req.url.startsWith('/admin/')) {
      req.originalUrl = req.url
      req.url = req.url.slice('/admin'.length)
      return stats(req, res, () => { res.writeHead(418); res.end('next') })
    }
    stats(req, res)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${server.address().port}`
})
after(() => new Promise((resolve) => server.close(resolve)))

async function call(method, path, headers = {}) {
  const r = await fetch(base + path, { method, headers })
  const text = await r.text()
  let body = null
  try { body = JSON.parse(text) } catch {}
  return { status: r.status, headers: r.headers, body, text }
}

test('GET stats of all circuits and of one; 404 for an unknown one', async () => {
  const name = uniq('http')
  const b = new CircuitBreaker({ name, logger: null, minimumRequests: 100 })
  await okN(b, 3)
  await failN(b, 1)
  const all = await call('GET', '/stats')
  assert.equal(all.status, 200)
  assert.match(all.headers.get('content-type'), /^application\/json/)
  assert.equal(all.headers.get('cache-control'), 'no-store')
  assert.equal(all.body.circuits[name].successCount, 3)
  assert.equal(typeof all.body.health.total, 'number')
  const one = await call('GET', `/stats/${encodeURIComponent(name)}`)
  assert.equal(one.status, 200)
  assert.equal(one.body.name, name)
  assert.equal(one.body.failureCount, 1)
  assert.equal(one.body.failureRate, 25)
  assert.equal((await call('GET', `/stats/${encodeURIComponent(name)}?x=1`)).status, 200, 'query strings are ignored')
  const unknown = await call('GET', '/stats/no-such-circuit')
  assert.equal(unknown.status, 404)
  assert.equal(unknown.body.error, 'unknown circuit')
  assert.equal((await call('GET', '/elsewhere')).status, 404)
  assert.equal((await call('GET', '/stats/a/b/c')).status, 404) // not ours: the bare server's 404
  assert.equal((await call('GET', '/stats/%E0%A4%A')).status, 400)
  const del = await call('DELETE', '/stats')
  assert.equal(del.status, 405)
  assert.ok(del.headers.get('allow'))
  b.dispose()
})

test('names with slashes, spaces and unicode round-trip through the URL', async () => {
  const name = `${uniq('http-odd')} / ü "q"`
  const b = new CircuitBreaker({ name, logger: null })
  const r = await call('GET', `/stats/${encodeURIComponent(name)}`)
  assert.equal(r.status, 200)
  assert.equal(r.body.name, name)
  b.dispose()
})

test('POST reset of one circuit needs the bearer token: 401 without or with a wrong one', async () => {
  const name = uniq('http-reset')
  const b = new CircuitBreaker({ name, logger: null, minimumRequests: 2 })
  await failN(b, 3)
  assert.equal(b.state, 'OPEN')
  const path = `/stats/${encodeURIComponent(name)}/reset`
  for (const auth of [undefined, 'Bearer wrong', `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, TOKEN, `Basic ${TOKEN}`, 'Bearer ', `Bearer ${'x'.repeat(5000)}`]) {
    const r = await call('POST', path, auth === undefined ? {} : { authorization: auth })
    assert.equal(r.status, 401, `authorization: ${auth && auth.slice(0, 40)}`)
    assert.match(r.headers.get('www-authenticate'), /^Bearer/)
    assert.equal(b.state, 'OPEN', 'nothing was reset')
  }
  const ok = await call('POST', path, { authorization: `Bearer ${TOKEN}` })
  assert.equal(ok.status, 200)
  assert.equal(ok.body.state, 'CLOSED')
  assert.equal(ok.body.failureCount, 0)
  assert.equal(b.state, 'CLOSED')
  assert.equal(b.getStats().totalRequests, 0)
  assert.equal((await call('POST', '/stats/no-such-circuit/reset', { authorization: `Bearer ${TOKEN}` })).status, 404)
  assert.equal((await call('POST', '/stats/no-such-circuit/reset')).status, 401, 'authentication comes first')
  assert.equal((await call('GET', path)).status, 405)
  b.dispose()
})

test('POST reset of every circuit', async () => {
  const a = new CircuitBreaker({ name: uniq('http-all-a'), logger: null, minimumRequests: 1 })
  const b = new CircuitBreaker({ name: uniq('http-all-b'), logger: null })
  await failN(a, 2)
  await okN(b, 2)
  assert.equal((await call('POST', '/stats/reset')).status, 401)
  assert.equal(a.state, 'OPEN')
  const r = await call('POST', '/stats/reset', { authorization: `bearer ${TOKEN}` })
  assert.equal(r.status, 200)
  assert.equal(r.body.reset, 'all')
  assert.equal(r.body.circuits[a.name].state, 'CLOSED')
  assert.equal(a.state, 'CLOSED')
  assert.equal(b.getStats().successCount, 0)
  a.dispose()
  b.dispose()
})

test('a circuit named "reset" is still readable with GET', async () => {
  const b = new CircuitBreaker({ name: 'reset', logger: null })
  const r = await call('GET', '/stats/reset')
  assert.equal(r.status, 200)
  assert.equal(r.body.name, 'reset')
  b.dispose()
})

test('mounted under Express-style middleware: routes by req.url (relative to the mount), next() for other paths', async () => {
  const name = uniq('http-mount')
  const b = new CircuitBreaker({ name, logger: null })
  const r = await call('GET', `/admin/stats/${encodeURIComponent(name)}`)
  assert.equal(r.status, 200)
  assert.equal(r.body.name, name)
  const other = await call('GET', '/admin/something-else')
  assert.equal(other.status, 418)
  assert.equal(other.text, 'next')
  b.dispose()
})

test('an internal error answers 500 without a stack trace', async () => {
  const name = uniq('http-500')
  const b = new CircuitBreaker({ name, logger: null })
  const original = CircuitBreaker.prototype.getStats
  CircuitBreaker.prototype.getStats = function () { throw new Error('secret internals at /some/file.js:1:1') }
  try {
    const r = await call('GET', `/stats/${encodeURIComponent(name)}`)
    assert.equal(r.status, 500)
    assert.deepEqual(r.body, { error: 'internal error' })
    assert.doesNotMatch(r.text, /secret|\.js|at /)
  } finally {
    CircuitBreaker.prototype.getStats = original
  }
  b.dispose()
})

test('without a resetToken, reset is refused (403); the token must be a non-empty string', async () => {
  const handler = createStatsHandler()
  const res = await handler.apiGateway({ httpMethod: 'POST', path: '/stats/reset', headers: { Authorization: 'Bearer anything' } })
  assert.equal(res.statusCode, 403)
  assert.throws(() => createStatsHandler({ resetToken: '' }), TypeError)
  assert.throws(() => createStatsHandler({ resetToken: 42 }), TypeError)
  assert.throws(() => createStatsHandler({ basePath: 'stats' }), TypeError)
})

test('API Gateway (Lambda proxy) handler: REST v1 and HTTP API v2 events', async () => {
  const name = uniq('apigw')
  const b = new CircuitBreaker({ name, logger: null, minimumRequests: 1 })
  await failN(b, 1)
  const h = createStatsHandler({ resetToken: TOKEN }).apiGateway
  const v1 = await h({ httpMethod: 'GET', path: `/stats/${encodeURIComponent(name)}`, headers: {} })
  assert.equal(v1.statusCode, 200)
  assert.equal(v1.isBase64Encoded, false)
  assert.match(v1.headers['Content-Type'], /application\/json/)
  assert.equal(JSON.parse(v1.body).state, 'OPEN')
  const v2 = await h({ version: '2.0', rawPath: '/prod/stats', requestContext: { stage: 'prod', http: { method: 'GET' } }, headers: {} })
  assert.equal(v2.statusCode, 200)
  assert.ok(JSON.parse(v2.body).circuits[name])
  const dflt = await h({ version: '2.0', rawPath: '/stats', requestContext: { stage: '$default', http: { method: 'GET' } }, headers: {} })
  assert.equal(dflt.statusCode, 200)
  const foreign = await h({ version: '2.0', rawPath: '/prod/users/42/stats', requestContext: { stage: 'prod', http: { method: 'GET' } }, headers: {} })
  assert.equal(foreign.statusCode, 404)
  assert.equal(JSON.parse(foreign.body).circuits, undefined)
  assert.equal((await h({ httpMethod: 'GET', path: '/stats/nope', headers: null })).statusCode, 404)
  const denied = await h({ httpMethod: 'POST', path: `/stats/${encodeURIComponent(name)}/reset`, headers: { Authorization: 'Bearer nope' } })
  assert.equal(denied.statusCode, 401)
  assert.equal(b.state, 'OPEN')
  const ok = await h({ version: '2.0', rawPath: `/stats/${encodeURIComponent(name)}/reset`, requestContext: { http: { method: 'POST' } }, headers: { authorization: `Bearer ${TOKEN}` } })
  assert.equal(ok.statusCode, 200)
  assert.equal(b.state, 'CLOSED')
  assert.equal((await h(undefined)).statusCode, 404)
  b.dispose()
})

// Issue 12 item 7: mounted as the README shows, the handler answered the app's own routes
// (`/users/42/stats`, `/api/stats?range=7d`, ...) with every circuit's stats, and a POST to
// `/users/42/stats/reset` with the token reset every circuit.
const FOREIGN = [
  ['GET', '/users/42/stats'],
  ['GET', '/api/orders/stats'],
  ['GET', '/api/stats?range=7d'],
  ['GET', '/reports/stats/stripe'],
  ['GET', '/statistics'],
  ['GET', '/stats-export'],
  ['GET', '/stats/a/b'],
  ['GET', '/stats//reset'],
  ['POST', '/users/42/stats/reset'],
  ['POST', '/api/stats/reset'],
  ['POST', '/stats/a/b/reset'],
]

async function listen(handler) {
  const srv = http.createServer(handler)
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${srv.address().port}`, close: () => new Promise((resolve) => srv.close(resolve)) }
}

test('Express: app.use(stats) answers only its own paths; every other request reaches the app, body unread', async () => {
  const express = require('express')
  const name = uniq('http-express')
  const b = new CircuitBreaker({ name, logger: null, minimumRequests: 1 })
  await failN(b, 1)
  assert.equal(b.state, 'OPEN')
  const app = express()
  app.use(createStatsHandler({ resetToken: TOKEN }))
  app.use('/admin', createStatsHandler({ resetToken: TOKEN }))
  app.use(express.json())
  app.all('/{*rest}', (req, res) => res.status(299).json({ app: true, method: req.method, url: req.originalUrl, body: req.body ?? null }))
  const srv = await listen(app)
  try {
    const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }
    for (const [method, path] of FOREIGN) {
      const r = await fetch(srv.url + path, { method, headers: auth, body: method === 'POST' ? '{"confirm":true}' : undefined })
      const body = await r.json()
      assert.equal(r.status, 299, `${method} ${path} must reach the app, got ${r.status} ${JSON.stringify(body).slice(0, 80)}`)
      assert.deepEqual(body, { app: true, method, url: path, body: method === 'POST' ? { confirm: true } : null })
    }
    assert.equal(b.state, 'OPEN', 'no POST to a foreign path reset anything')

    // its own routes, at the root and where it is mounted
    for (const prefix of ['', '/admin']) {
      const all = await fetch(`${srv.url}${prefix}/stats?range=7d`)
      assert.equal(all.status, 200)
      assert.equal((await all.json()).circuits[name].state, 'OPEN')
      assert.equal((await fetch(`${srv.url}${prefix}/stats/`)).status, 200)
      const one = await fetch(`${srv.url}${prefix}/stats/${encodeURIComponent(name)}/`)
      assert.equal((await one.json()).name, name)
    }
    assert.equal((await fetch(`${srv.url}/stats/no-such-circuit`)).status, 404)
    const reset = await fetch(`${srv.url}/admin/stats/${encodeURIComponent(name)}/reset`, { method: 'POST', headers: auth })
    assert.equal(reset.status, 200)
    assert.equal(b.state, 'CLOSED')
  } finally {
    await srv.close()
    b.dispose()
  }
})

test('plain node:http: next() for paths that are not its own, a 404 of its own without next', async () => {
  const stats = createStatsHandler({ resetToken: TOKEN, basePath: '/internal/circuits' })
  const name = uniq('http-plain')
  const b = new CircuitBreaker({ name, logger: null })
  const srv = await listen((req, res) => stats(req, res, () => res.writeHead(299).end(`app ${req.method} ${req.url}`)))
  const bare = await listen(stats)
  try {
    for (const [method, path] of [...FOREIGN, ['GET', '/stats'], ['GET', '/internal/circuits-old'], ['GET', '/x/internal/circuits']]) {
      const r = await fetch(srv.url + path, { method, headers: { authorization: `Bearer ${TOKEN}` } })
      assert.equal(r.status, 299, `${method} ${path}`)
      assert.equal(await r.text(), `app ${method} ${path}`)
      const alone = await fetch(bare.url + path, { method, headers: { authorization: `Bearer ${TOKEN}` } })
      assert.equal(alone.status, 404, `${method} ${path} on its own server`)
      assert.deepEqual(await alone.json(), { error: 'not found' })
    }
    const own = await fetch(`${srv.url}/internal/circuits/${encodeURIComponent(name)}`)
    assert.equal(own.status, 200)
    assert.equal((await own.json()).name, name)
    assert.equal((await fetch(`${srv.url}/internal/circuits`)).status, 200)
  } finally {
    await srv.close()
    await bare.close()
    b.dispose()
  }
})
