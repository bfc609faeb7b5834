'use strict'
// Circuit names CloudWatch refuses as dimension values (issue 12 item 8a). Against a client
// that enforces AWS's documented rule, one such name used to fail the whole PutMetricData
// request it was in — 111 of 150 circuits lost their metrics on every publish.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { CircuitBreaker, publishToCloudWatch, toCloudWatchMetricData, emitEmf, cloudWatchAlarms, cloudWatchDimensionValue } = require('../index.js')
const { uniq, okN } = require('./helpers.js')
const { requireTool, startMoto, cloudWatchClient, has } = require('./helpers/tools.js')

/**
 * AWS's rule for a dimension value, written from the API reference (not from breakwater's
 * code): 1–1024 characters, ASCII only, no ASCII control characters, at least one
 * non-whitespace character.
 */
function awsAccepts(value) {
  return typeof value === 'string' && value.length >= 1 && value.length <= 1024 &&
    /^[\x00-\x7f]*$/.test(value) && !/[\x00-\x1f\x7f]/.test(value) && /\S/.test(value)
}

/** A CloudWatch client that refuses a PutMetricData request holding an invalid dimension value, as AWS does (moto does not check). */
function enforcing(inner) {
  const refused = []
  return {
    refused,
    async send(command) {
      const data = (command.input && command.input.MetricData) || []
      data.forEach((d, i) => (d.Dimensions || []).forEach((dim, j) => {
        if (!awsAccepts(dim.Value)) {
          refused.push(dim.Value)
          const err = new Error(`The value for parameter MetricData.member.${i + 1}.Dimensions.member.${j + 1}.Value is invalid.`)
          err.name = 'InvalidParameterValue'
          throw err
        }
      }))
      return inner.send(command)
    },
  }
}

const HOSTILE = [
  'Zürich weather', 'café', 'cafe\u0301', 'cafè', '東京', 'payments 💳', ' ', '   \t ', 'line\nbreak', 'nul\u0000', 'del\u007f',
  'tab\tstripe', `${'y'.repeat(255)}é`, '\u00a0', 'ＦＵＬＬ',
]

test('cloudWatchDimensionValue: valid names unchanged; others folded to ASCII + a hash, deterministic and distinct', () => {
  for (const ok of ['stripe', 'a b', ' leading', 'x'.repeat(1024), '~!@#$%^&*()', 'weather api/v2']) assert.equal(cloudWatchDimensionValue(ok), ok)
  // circuit names stop at 256 characters; the function also takes longer strings (alarms' `circuits`)
  // (and a lone surrogate, which the native registry stores as U+FFFD)
  const names = [...HOSTILE, '', 'x'.repeat(1025), `${'y'.repeat(2000)}é`, '\ud800lone']
  const values = names.map(cloudWatchDimensionValue)
  for (const [i, v] of values.entries()) assert.ok(awsAccepts(v), `${JSON.stringify(names[i]).slice(0, 40)} -> ${JSON.stringify(v).slice(0, 60)}`)
  assert.equal(new Set(values).size, names.length, 'no two names share a value')
  // the published value is part of a metric's identity (alarms, dashboards): it must never change
  assert.equal(cloudWatchDimensionValue('café'), 'cafe~8c9f3eed8d0b')
  assert.equal(cloudWatchDimensionValue('Zürich weather').replace(/~.*/, ''), 'Zurich weather')
  assert.equal(cloudWatchDimensionValue('   \t ').replace(/~.*/, ''), '_')
  assert.equal(cloudWatchDimensionValue('x'.repeat(1025)).length, 1024)
  assert.throws(() => cloudWatchDimensionValue(42), TypeError)
})

test('toCloudWatchMetricData, emitEmf and the alarms use the sanitised value for such names', async () => {
  const name = `Zürich ${uniq('cw-name')}`
  const b = new CircuitBreaker({ name, logger: null, minimumRequests: 1 })
  await okN(b, 2)
  const value = cloudWatchDimensionValue(name)
  assert.notEqual(value, name)
  const data = toCloudWatchMetricData().filter((d) => d.Dimensions[0].Value === value)
  assert.deepEqual(data.map((d) => d.MetricName).sort(), ['CircuitState', 'FailureCount', 'FailureRate', 'FallbackCount', 'IgnoredCount', 'RejectionCount', 'SlowCallCount', 'SuccessCount', 'TimeoutCount', 'TotalRequests'])
  assert.equal(data.find((d) => d.MetricName === 'SuccessCount').Value, 2)
  const lines = []
  emitEmf({ namespace: 'N', write: (l) => lines.push(JSON.parse(l)) })
  for (const doc of lines) assert.ok(awsAccepts(doc.Service), JSON.stringify(doc.Service))
  assert.equal(lines.filter((d) => d.Service === value).length, 2)
  for (const alarm of cloudWatchAlarms({ namespace: 'N', circuits: [name] })) {
    const dims = alarm.Dimensions || alarm.Metrics.filter((m) => m.MetricStat).flatMap((m) => m.MetricStat.Metric.Dimensions)
    for (const d of dims) assert.ok(awsAccepts(d.Value))
    assert.ok(dims.some((d) => d.Name === 'Service' && d.Value === value))
  }
  b.dispose()
})

let moto = null
before(async () => {
  if (has('moto_server')) moto = await startMoto()
})
after(async () => {
  if (moto) await moto.stop()
})

test('150 circuits, some with names CloudWatch refuses: every circuit is published (enforcing client over moto)', async (t) => {
  if (!requireTool(t, 'moto_server')) return
  const { PutMetricDataCommand, ListMetricsCommand, GetMetricStatisticsCommand } = require('@aws-sdk/client-cloudwatch')
  const real = cloudWatchClient(moto.endpoint)
  const client = enforcing(real)
  const namespace = `Breakwater/${uniq('names')}`
  const made = []
  for (let i = 0; made.length < 150; i++) {
    const name = i < HOSTILE.length ? HOSTILE[i] : uniq(`cw-name-${i}`)
    made.push(new CircuitBreaker({ name, logger: null }))
  }
  for (const b of made) await okN(b, 3)
  const r = await publishToCloudWatch(client, { namespace, PutMetricDataCommand })
  assert.deepEqual(client.refused, [])
  assert.ok(r.metrics >= 150 * 9, JSON.stringify(r))

  const seen = new Set()
  let NextToken
  do {
    const page = await real.send(new ListMetricsCommand({ Namespace: namespace, MetricName: 'SuccessCount', NextToken }))
    for (const m of page.Metrics) seen.add(m.Dimensions.find((d) => d.Name === 'Service').Value)
    NextToken = page.NextToken
  } while (NextToken)
  for (const b of made) assert.ok(seen.has(cloudWatchDimensionValue(b.name)), `${JSON.stringify(b.name).slice(0, 40)} was published`)
  assert.equal(seen.size, 150)
  for (const name of ['café', '   \t ']) {
    const stats = await real.send(new GetMetricStatisticsCommand({
      Namespace: namespace, MetricName: 'SuccessCount', Dimensions: [{ Name: 'Service', Value: cloudWatchDimensionValue(name) }],
      StartTime: new Date(Date.now() - 3600_000), EndTime: new Date(Date.now() + 3600_000), Period: 60, Statistics: ['Sum'],
    }))
    assert.equal(stats.Datapoints.reduce((a, d) => a + d.Sum, 0), 3, name)
  }
  for (const b of made) b.dispose()
})
