'use strict'
// Lambda: withCircuitBreaker(handler, options) and the Middy middleware (breakwater/middy),
// run with the real @middy/core; their types under tsc --strict with @types/aws-lambda.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const fs = require('node:fs')
const { spawnSync } = require('node:child_process')
const { CircuitBreaker, CircuitBreakerOpenError, CircuitBreakerTimeoutError, withCircuitBreaker } = require('..')
const { circuitBreakerMiddleware } = require('breakwater/middy')
const { uniq } = require('./helpers.js')

const ROOT = path.join(__dirname, '..')
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
const base = () => ({ name: uniq('lambda'), logger: null, timeout: 0, consecutiveFailures: 2 })
const context = { functionName: 'checkout', getRemainingTimeInMillis: () => 30_000 }
const loadMiddy = async () => (await import('@middy/core')).default

test('withCircuitBreaker: the handler runs through the breaker; a throw is a failure and propagates', async () => {
  const boom = new Error('stripe down')
  let fail = false
  const handler = withCircuitBreaker(async (event, ctx) => {
    if (fail) throw boom
    return { statusCode: 200, body: `${event.id}:${ctx.functionName}` }
  }, base())
  assert.deepEqual(await handler({ id: 1 }, context), { statusCode: 200, body: '1:checkout' })
  fail = true
  await assert.rejects(handler({ id: 2 }, context), (e) => e === boom)
  await assert.rejects(handler({ id: 3 }, context), (e) => e === boom)
  // Two failures in a row opened it: the handler no longer runs.
  fail = false
  await assert.rejects(handler({ id: 4 }, context), (e) => e instanceof CircuitBreakerOpenError)
  const s = handler.breaker.getStats()
  assert.deepEqual([s.successCount, s.failureCount, s.rejectionCount, s.state], [1, 2, 1, 'OPEN'])
})

test('withCircuitBreaker: fallback(error, event, context) answers failures and rejections with a response', async () => {
  const seen = []
  let runs = 0
  const handler = withCircuitBreaker(async () => { runs++; throw new Error('down') }, {
    ...base(),
    fallback: (error, event, ctx) => {
      seen.push({ error, event, ctx })
      return { statusCode: 503, body: `${error.name}:${event.id}` }
    },
  })
  assert.deepEqual(await handler({ id: 'a' }, context), { statusCode: 503, body: 'Error:a' })
  assert.deepEqual(await handler({ id: 'b' }, context), { statusCode: 503, body: 'Error:b' })
  assert.deepEqual(await handler({ id: 'c' }, context), { statusCode: 503, body: 'CircuitBreakerOpenError:c' })
  assert.equal(runs, 2)
  assert.equal(seen[2].ctx, context)
  assert.equal(handler.breaker.getStats().fallbackCount, 3)
})

test('withCircuitBreaker: an ignored error propagates unchanged, with no fallback; { breaker } uses an existing one', async () => {
  const breaker = new CircuitBreaker({ ...base(), isFailure: (e) => e.statusCode !== 400 })
  let fb = 0
  const bad = Object.assign(new Error('bad input'), { statusCode: 400 })
  const handler = withCircuitBreaker(async () => { throw bad }, { breaker, fallback: () => { fb++ } })
  assert.equal(handler.breaker, breaker)
  await assert.rejects(handler({}, context), (e) => e === bad)
  assert.equal(fb, 0)
  assert.deepEqual([breaker.getStats().ignoredCount, breaker.getStats().failureCount], [1, 0])
  assert.throws(() => withCircuitBreaker(async () => 1, { breaker, timeout: 5 }), /either \{ breaker \} or breaker options.*timeout/)
  assert.throws(() => withCircuitBreaker(async () => 1, { breaker: {} }), (e) => e instanceof TypeError && /option breaker must be a CircuitBreaker/.test(e.message))
  assert.throws(() => withCircuitBreaker('x', base()), TypeError)
  assert.throws(() => withCircuitBreaker(async () => 1, { ...base(), fallback: 'x' }), (e) => e instanceof TypeError && /option fallback/.test(e.message))
})

test('withCircuitBreaker: emitEmf publishes the metrics after each invocation, success or not', async () => {
  const lines = []
  const opts = base()
  const handler = withCircuitBreaker(async (event) => { if (event.fail) throw new Error('x'); return 'ok' }, {
    ...opts, emitEmf: { namespace: 'Checkout', write: (l) => lines.push(l) },
  })
  await handler({}, context)
  const after1 = lines.length
  assert.ok(after1 > 0)
  await handler({ fail: true }, context).catch(() => {})
  assert.ok(lines.length > after1)
  const docs = lines.join('').trim().split('\n').map((l) => JSON.parse(l)).filter((d) => d.Service === opts.name)
  assert.ok(docs.some((d) => d.FailureCount === 1), JSON.stringify(docs))
})

test('withCircuitBreaker: a metrics problem is logged and never fails the invocation', async () => {
  const lines = []
  const logger = { error: (m) => lines.push(m) }
  // stdout gone (a closed pipe): emitEmf throws after the invocation.
  const write = () => { throw new Error('write EPIPE') }
  const handler = withCircuitBreaker(async () => 'ok', { ...base(), logger, emitEmf: { write } })
  assert.equal(await handler({}, context), 'ok')
  assert.equal(lines.length, 1)
  assert.match(lines[0], /emitEmf after an invocation failed: write EPIPE/)
})

// ---- Middy ---------------------------------------------------------------------------------

test('middy: while OPEN the handler does not run and the fallback response answers', async () => {
  const middy = await loadMiddy()
  let runs = 0
  let fail = true
  const mw = circuitBreakerMiddleware({ ...base(), fallback: (error, event) => ({ statusCode: 503, body: `${error.name}:${event.id}` }) })
  const handler = middy(async (event) => {
    runs++
    if (fail) throw new Error('upstream down')
    return { statusCode: 200, body: String(event.id) }
  }).use(mw)
  assert.deepEqual(await handler({ id: 1 }, context), { statusCode: 503, body: 'Error:1' })
  assert.deepEqual(await handler({ id: 2 }, context), { statusCode: 503, body: 'Error:2' })
  fail = false
  assert.deepEqual(await handler({ id: 3 }, context), { statusCode: 503, body: 'CircuitBreakerOpenError:3' })
  assert.equal(runs, 2)
  const s = mw.breaker.getStats()
  assert.deepEqual([s.failureCount, s.rejectionCount, s.fallbackCount, s.state], [2, 1, 3, 'OPEN'])
  // Recovery: after the open period a probe runs the handler, and success closes the circuit.
  mw.breaker.halfOpen()
  assert.deepEqual(await handler({ id: 4 }, context), { statusCode: 200, body: '4' })
  assert.equal(mw.breaker.state, 'CLOSED')
})

test('middy: successes are recorded; without a fallback a handler error propagates, and so does the open error', async () => {
  const middy = await loadMiddy()
  const boom = new Error('boom')
  let fail = false
  const mw = circuitBreakerMiddleware(base())
  const handler = middy(async () => { if (fail) throw boom; return 'fine' }).use(mw)
  assert.equal(await handler({}, context), 'fine')
  assert.equal(mw.breaker.getStats().successCount, 1)
  fail = true
  await assert.rejects(handler({}, context), (e) => e === boom)
  await assert.rejects(handler({}, context), (e) => e === boom)
  await assert.rejects(handler({}, context), (e) => e instanceof CircuitBreakerOpenError)
  assert.deepEqual([mw.breaker.getStats().failureCount, mw.breaker.getStats().rejectionCount], [2, 1])
})

test('middy: other middlewares see the fallback response like a handler response; an error a later middleware handles is still a failure', async () => {
  const middy = await loadMiddy()
  const mw = circuitBreakerMiddleware({ ...base(), fallback: () => ({ statusCode: 503 }) })
  const seen = []
  const handler = middy(async () => { throw new Error('down') })
    .use(mw)
    .use({ after: (request) => { seen.push(request.response) } })
  assert.deepEqual(await handler({}, context), { statusCode: 503 })
  assert.equal(mw.breaker.getStats().failureCount, 1)

  // A JSON-error middleware placed after ours handles errors: ours ran first in onError.
  const mw2 = circuitBreakerMiddleware(base())
  const handler2 = middy(async () => { throw new Error('down') })
    .use(mw2)
    .use({ onError: (request) => { request.response = { statusCode: 500, body: request.error.message } } })
  assert.deepEqual(await handler2({}, context), { statusCode: 500, body: 'down' })
  assert.equal(mw2.breaker.getStats().failureCount, 1)
})

test('middy: a handler slower than the breaker timeout counts as a timeout; the fallback answers', async () => {
  const middy = await loadMiddy()
  const got = []
  const mw = circuitBreakerMiddleware({ ...base(), timeout: 30, fallback: (e) => { got.push(e); return { statusCode: 504 } } })
  const handler = middy(async () => { await new Promise((r) => setTimeout(r, 150)); return { statusCode: 200 } }).use(mw)
  assert.deepEqual(await handler({}, context), { statusCode: 504 })
  assert.ok(got[0] instanceof CircuitBreakerTimeoutError)
  assert.equal(mw.breaker.getStats().timeoutCount, 1)
})

test('middy: emitEmf publishes metrics after the invocation, also when the circuit answered early', async () => {
  const middy = await loadMiddy()
  const lines = []
  const opts = base()
  const mw = circuitBreakerMiddleware({ ...opts, fallback: () => 'fb', emitEmf: { namespace: 'Checkout', write: (l) => lines.push(l) } })
  const handler = middy(async () => 'ok').use(mw)
  await handler({}, context)
  const n = lines.length
  assert.ok(n > 0)
  mw.breaker.open()
  assert.equal(await handler({}, context), 'fb')
  assert.ok(lines.length > n, 'published after the early response too')
  const docs = lines.join('').trim().split('\n').map((l) => JSON.parse(l)).filter((d) => d.Service === opts.name)
  assert.ok(docs.some((d) => d.RejectionCount === 1), JSON.stringify(docs))
})

test('breakwater/middy and breakwater/decorators load from ESM as the same functions', async () => {
  const esm = await import('breakwater/middy')
  assert.equal(esm.circuitBreakerMiddleware, circuitBreakerMiddleware)
  const deco = await import('breakwater/decorators')
  assert.equal(deco.retry, require('breakwater/decorators').retry)
  assert.equal((await import('breakwater')).withCircuitBreaker, withCircuitBreaker)
})

test('the Lambda types compile under tsc --strict with @types/aws-lambda and @middy/core', { skip: !fs.existsSync(TSC) && 'typescript not installed', timeout: 120_000 }, () => {
  const r = spawnSync(process.execPath, [TSC,
    '--strict', '--noEmit', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022',
    '--types', 'node,aws-lambda', '--skipLibCheck', 'false', path.join(__dirname, 'fixtures', 'lambda.ts'),
  ], { cwd: ROOT, encoding: 'utf8' })
  assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`)
})
