'use strict'
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const path = require('node:path')
const { CircuitBreaker, emitEmf } = require('../index.js')
const { uniq, failN, okN } = require('./helpers.js')

const UNITS = new Set(['Seconds', 'Microseconds', 'Milliseconds', 'Bytes', 'Kilobytes', 'Megabytes', 'Gigabytes', 'Terabytes',
  'Bits', 'Kilobits', 'Megabits', 'Gigabits', 'Terabits', 'Percent', 'Count', 'Bytes/Second', 'Kilobytes/Second',
  'Megabytes/Second', 'Gigabytes/Second', 'Terabytes/Second', 'Bits/Second', 'Kilobits/Second', 'Megabits/Second',
  'Gigabits/Second', 'Terabits/Second', 'Count/Second', 'None'])

/** Validates one line against the CloudWatch Embedded Metric Format specification. */
function validateEmf(line) {
  assert.ok(line.endsWith('\n') && !line.slice(0, -1).includes('\n'), 'one document per line')
  const doc = JSON.parse(line)
  assert.equal(typeof doc._aws, 'object')
  assert.ok(Number.isInteger(doc._aws.Timestamp) && Math.abs(doc._aws.Timestamp - Date.now()) < 60_000, 'Timestamp in epoch ms')
  assert.ok(Array.isArray(doc._aws.CloudWatchMetrics) && doc._aws.CloudWatchMetrics.length >= 1)
  for (const dir of doc._aws.CloudWatchMetrics) {
    assert.deepEqual(Object.keys(dir).sort(), ['Dimensions', 'Metrics', 'Namespace'])
    assert.ok(typeof dir.Namespace === 'string' && dir.Namespace.length >= 1 && dir.Namespace.length <= 1024)
    assert.ok(Array.isArray(dir.Dimensions))
    for (const set of dir.Dimensions) {
      assert.ok(Array.isArray(set) && set.length >= 1 && set.length <= 30)
      for (const key of set) assert.equal(typeof doc[key], 'string', `dimension ${key} is a string member of the root`)
    }
    assert.ok(Array.isArray(dir.Metrics) && dir.Metrics.length >= 1 && dir.Metrics.length <= 100)
    for (const m of dir.Metrics) {
      assert.ok(typeof m.Name === 'string' && m.Name.length >= 1 && m.Name.length <= 1024)
      assert.ok(UNITS.has(m.Unit), m.Unit)
      assert.ok(typeof doc[m.Name] === 'number' && Number.isFinite(doc[m.Name]), `${m.Name} is a number in the root`)
    }
  }
  return doc
}

function capture(options) {
  const lines = []
  const docs = emitEmf({ ...options, write: (l) => lines.push(l) })
  return { lines, docs, parsed: lines.map(validateEmf) }
}

test('emitEmf: valid EMF in the _aws structure of Powertools, counts with Service, FailureRate with Service and State', async () => {
  const name = uniq('emf')
  const b = new CircuitBreaker({ name, logger: null, minimumRequests: 4, failureThreshold: 0.9 })
  await okN(b, 3)
  await failN(b, 1)
  const { parsed, lines, docs } = capture({ namespace: 'Breakwater/Emf' })
  assert.equal(lines.length, docs.length)
  const ours = parsed.filter((d) => d.Service === name)
  assert.equal(ours.length, 2)
  const counts = ours.find((d) => 'SuccessCount' in d)
  assert.deepEqual(counts._aws.CloudWatchMetrics[0].Dimensions, [['Service']])
  assert.equal(counts._aws.CloudWatchMetrics[0].Namespace, 'Breakwater/Emf')
  assert.equal(counts.SuccessCount, 3)
  assert.equal(counts.FailureCount, 1)
  assert.equal(counts.TotalRequests, 4)
  assert.equal(counts.CircuitState, 0)
  assert.ok(counts._aws.CloudWatchMetrics[0].Metrics.every((m) => m.Unit === (m.Name === 'CircuitState' ? 'None' : 'Count')))
  assert.equal(counts.State, undefined)
  const rate = ours.find((d) => 'FailureRate' in d)
  assert.deepEqual(rate._aws.CloudWatchMetrics[0].Dimensions, [['Service', 'State']])
  assert.deepEqual(rate._aws.CloudWatchMetrics[0].Metrics, [{ Name: 'FailureRate', Unit: 'Percent' }])
  assert.equal(rate.State, 'CLOSED')
  assert.equal(rate.FailureRate, 25)

  // deltas since the previous emitEmf
  await okN(b, 2)
  const again = capture({ namespace: 'Breakwater/Emf' }).parsed.find((d) => d.Service === name && 'SuccessCount' in d)
  assert.equal(again.SuccessCount, 2)
  assert.equal(again.FailureCount, 0)
  b.dispose()
})

test('emitEmf: extra dimensions, a subset of metrics, POWERTOOLS_METRICS_NAMESPACE, errors', async () => {
  const name = uniq('emf-opts')
  const b = new CircuitBreaker({ name, logger: null })
  await okN(b, 1)
  const { parsed } = capture({ namespace: 'N', dimensions: [{ Name: 'Environment', Value: 'prod' }], metrics: ['SuccessCount'] })
  const ours = parsed.filter((d) => d.Service === name)
  assert.equal(ours.length, 1)
  assert.deepEqual(ours[0]._aws.CloudWatchMetrics[0].Dimensions, [['Service', 'Environment']])
  assert.equal(ours[0].Environment, 'prod')
  assert.deepEqual(ours[0]._aws.CloudWatchMetrics[0].Metrics, [{ Name: 'SuccessCount', Unit: 'Count' }])

  const saved = process.env.POWERTOOLS_METRICS_NAMESPACE
  try {
    process.env.POWERTOOLS_METRICS_NAMESPACE = 'FromEnv'
    assert.ok(capture({}).parsed.every((d) => d._aws.CloudWatchMetrics[0].Namespace === 'FromEnv'))
    delete process.env.POWERTOOLS_METRICS_NAMESPACE
    assert.ok(capture({}).parsed.every((d) => d._aws.CloudWatchMetrics[0].Namespace === 'Breakwater'), 'the default namespace')
    process.env.POWERTOOLS_METRICS_NAMESPACE = ''
    assert.ok(capture({}).parsed.every((d) => d._aws.CloudWatchMetrics[0].Namespace === 'Breakwater'), 'an empty variable is unset')
    assert.throws(() => emitEmf({ namespace: '', write: () => {} }), (e) => e instanceof TypeError && /namespace/.test(e.message))
  } finally {
    if (saved === undefined) delete process.env.POWERTOOLS_METRICS_NAMESPACE
    else process.env.POWERTOOLS_METRICS_NAMESPACE = saved
  }
  assert.throws(() => emitEmf({ namespace: 'N', write: 'x' }), TypeError)
  b.dispose()
})

// Issue 12 item 8c: emitEmf() with no argument threw.
test('emitEmf() with no argument writes to stdout, one JSON document per line: POWERTOOLS_METRICS_NAMESPACE, else Breakwater', () => {
  const entry = path.join(__dirname, '..', 'index.js')
  const script = `
    const { CircuitBreaker, emitEmf } = require(${JSON.stringify(entry)})
    const b = new CircuitBreaker({ name: 'emf-stdout', logger: null, minimumRequests: 1 })
    b.execute(() => 1).then(() => { emitEmf() })`
  const { POWERTOOLS_METRICS_NAMESPACE, ...env } = process.env
  for (const [ns, expected] of [[undefined, 'Breakwater'], ['Checkout', 'Checkout']]) {
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000, env: ns ? { ...env, POWERTOOLS_METRICS_NAMESPACE: ns } : env })
    assert.equal(r.status, 0, r.stderr)
    const lines = r.stdout.split(/(?<=\n)/)
    assert.equal(lines.length, 2)
    const docs = lines.map(validateEmf)
    assert.equal(docs[0].Service, 'emf-stdout')
    assert.equal(docs[0].SuccessCount, 1)
    assert.equal(docs[1].FailureRate, 0)
    for (const d of docs) assert.equal(d._aws.CloudWatchMetrics[0].Namespace, expected)
  }
})
