'use strict'
// Presets: plain frozen options objects that make working breakers; what each counts as a
// failure, with a real PostgreSQL server for the database preset.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { CircuitBreaker, presets, createExternalServiceCircuitBreaker } = require('..')
const { requirePostgres, startPostgres } = require('./helpers/postgres')
const { uniq } = require('./helpers.js')

const httpError = (status) => Object.assign(new Error(`HTTP ${status}`), { status })

test('presets are frozen options objects that spread into working breakers, overrides winning', async () => {
  for (const [key, preset] of Object.entries(presets)) {
    assert.ok(Object.isFrozen(preset), key)
    if (preset.window) assert.ok(Object.isFrozen(preset.window), `${key}.window`)
    assert.equal(preset.name, undefined, `${key} has no name`)
    const b = new CircuitBreaker({ ...preset, name: uniq(key), logger: null, timeout: 1_234 })
    const s = b.getStats()
    assert.equal(s.timeout, 1_234)
    assert.equal(s.failureThreshold, preset.failureThreshold)
    assert.equal(s.minimumRequests, preset.minimumRequests)
    assert.equal(s.resetTimeout, preset.resetTimeout)
    assert.equal(await b.execute(() => 'ok'), 'ok')
  }
  assert.throws(() => { 'use strict'; presets.llm.timeout = 1 }, TypeError)
  assert.deepEqual(Object.keys(presets).sort(), ['cache', 'database', 'llm'])
  // The third-party API preset still is the function it was.
  const ext = createExternalServiceCircuitBreaker(uniq('ext'), () => 'fb', { logger: null })
  assert.deepEqual([ext.getStats().failureThreshold, ext.getStats().minimumRequests, ext.getStats().timeout, ext.getStats().resetTimeout], [0.5, 10, 30_000, 60_000])
})

test('presets.llm: client errors (4xx) are not failures, but 408/409/425/429, 5xx and network errors are', async () => {
  // minimumRequests raised so that the circuit stays CLOSED while every kind of error is counted.
  const b = new CircuitBreaker({ ...presets.llm, name: uniq('llm'), logger: null, timeout: 0, minimumRequests: 100 })
  const throwing = (e) => b.execute(() => Promise.reject(e)).catch(() => {})
  for (const s of [400, 401, 403, 404, 422]) await throwing(httpError(s))
  await throwing(Object.assign(new Error('bad prompt'), { response: { status: 400 } })) // axios
  await throwing(Object.assign(new Error('ValidationException'), { $metadata: { httpStatusCode: 400 } })) // Bedrock
  assert.deepEqual([b.getStats().ignoredCount, b.getStats().failureCount], [7, 0])
  for (const s of [408, 409, 425, 429, 500, 503]) await throwing(httpError(s))
  await throwing(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))
  await throwing(Object.assign(new Error('ThrottlingException'), { $metadata: { httpStatusCode: 429 } }))
  assert.deepEqual([b.getStats().ignoredCount, b.getStats().failureCount], [7, 8])
  // With the preset's own minimumRequests, 5 failed calls open it.
  const c = new CircuitBreaker({ ...presets.llm, name: uniq('llm'), logger: null })
  for (let i = 0; i < 5; i++) await c.execute(() => Promise.reject(httpError(503))).catch(() => {})
  assert.equal(c.state, 'OPEN')
})

test('presets.database with a real PostgreSQL: a duplicate key or a syntax error is not a failure; a refused connection is', { timeout: 120_000 }, async (t) => {
  if (!requirePostgres(t)) return
  const { Client } = require('pg')
  const server = await startPostgres()
  const client = new Client({ connectionString: server.connectionString })
  // One hook, in order: the client ends before the server stops.
  t.after(async () => {
    await client.end().catch(() => {})
    await server.stop()
  })
  await client.connect()
  await client.query('create table orders (id int primary key)')
  await client.query('insert into orders values (1)')

  const b = new CircuitBreaker({ ...presets.database, name: uniq('db'), logger: null })
  const dup = await b.execute(() => client.query('insert into orders values (1)')).catch((e) => e)
  assert.equal(dup.code, '23505')
  const syntax = await b.execute(() => client.query('selec 1')).catch((e) => e)
  assert.equal(syntax.code, '42601')
  const data = await b.execute(() => client.query("select 'x'::int")).catch((e) => e)
  assert.equal(data.code, '22P02')
  assert.deepEqual([b.getStats().ignoredCount, b.getStats().failureCount], [3, 0])

  // Nothing listens on a closed port: five refused connections in a row open the circuit.
  const { freePort } = require('./helpers/tools.js')
  const port = await freePort()
  for (let i = 0; i < 5; i++) {
    const e = await b.execute(async () => {
      const c = new Client({ host: '127.0.0.1', port, user: 'x', database: 'x', connectionTimeoutMillis: 2_000 })
      try {
        await c.connect()
      } finally {
        await c.end().catch(() => {})
      }
    }).catch((x) => x)
    assert.equal(e.code, 'ECONNREFUSED')
  }
  assert.deepEqual([b.getStats().failureCount, b.state], [5, 'OPEN'])
})
