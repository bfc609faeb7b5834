'use strict'
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { CircuitBreaker, toCloudWatchMetricData, publishToCloudWatch } = require('../index.js')
const { uniq, failN, okN } = require('./helpers.js')
const { requireTool, startMoto, cloudWatchClient, has } = require('./helpers/tools.js')

const mine = (data, name) => data.filter((d) => d.Dimensions[0].Value === name)
const valueOf = (data, name, metric) => {
  const d = mine(data, name).filter((x) => x.MetricName === metric)
  assert.equal(d.length, 1, `${metric} of ${name}`)
  return d[0]
}

test('toCloudWatchMetricData: counts are deltas since the previous call; FailureRate in Percent with Service and State', async () => {
  const name = uniq('cw-delta')
  const b = new CircuitBreaker({ name, logger: null, minimumRequests: 8, failureThreshold: 0.9 })
  await okN(b, 6)
  await failN(b, 2)
  let data = toCloudWatchMetricData()
  assert.equal(valueOf(data, name, 'SuccessCount').Value, 6)
  assert.equal(valueOf(data, name, 'FailureCount').Value, 2)
  assert.equal(valueOf(data, name, 'TotalRequests').Value, 8)
  const rate = valueOf(data, name, 'FailureRate')
  assert.equal(rate.Unit, 'Percent')
  assert.equal(rate.Value, 25)
  assert.deepEqual(rate.Dimensions, [{ Name: 'Service', Value: name }, { Name: 'State', Value: 'CLOSED' }])
  const ok = valueOf(data, name, 'SuccessCount')
  assert.equal(ok.Unit, 'Count')
  assert.deepEqual(ok.Dimensions, [{ Name: 'Service', Value: name }])
  assert.ok(ok.Timestamp instanceof Date)
  assert.deepEqual(mine(data, name).map((d) => d.MetricName).sort(),
    ['CircuitState', 'FailureCount', 'FailureRate', 'FallbackCount', 'IgnoredCount', 'RejectionCount', 'SlowCallCount', 'SuccessCount', 'TimeoutCount', 'TotalRequests'])
  assert.deepEqual(valueOf(data, name, 'CircuitState'), { MetricName: 'CircuitState', Dimensions: [{ Name: 'Service', Value: name }], Unit: 'None', Value: 0, Timestamp: ok.Timestamp })

  await okN(b, 3)
  data = toCloudWatchMetricData()
  assert.equal(valueOf(data, name, 'SuccessCount').Value, 3, 'only the new successes')
  assert.equal(valueOf(data, name, 'FailureCount').Value, 0)
  data = toCloudWatchMetricData()
  assert.equal(valueOf(data, name, 'TotalRequests').Value, 0)

  // after a reset the counters start again from zero: the delta is never negative
  await okN(b, 5)
  toCloudWatchMetricData()
  b.reset()
  await okN(b, 2)
  data = toCloudWatchMetricData()
  assert.equal(valueOf(data, name, 'SuccessCount').Value, 2)

  // OPEN shows in the State dimension (the window holds the 8 calls the rate needs) and in CircuitState
  await okN(b, 6)
  b.open()
  await b.execute(() => 1).catch(() => {})
  data = toCloudWatchMetricData()
  assert.equal(valueOf(data, name, 'FailureRate').Dimensions[1].Value, 'OPEN')
  assert.equal(valueOf(data, name, 'CircuitState').Value, 2)
  assert.equal(valueOf(data, name, 'RejectionCount').Value, 1)
  b.dispose()
  assert.equal(mine(toCloudWatchMetricData(), name).length, 0)
})

test('toCloudWatchMetricData: extra dimensions, a subset of metrics, bad options', async () => {
  const name = uniq('cw-opts')
  const b = new CircuitBreaker({ name, logger: null, minimumRequests: 1 })
  await okN(b, 1)
  const data = mine(toCloudWatchMetricData({ dimensions: [{ Name: 'Environment', Value: 'prod' }], metrics: ['SuccessCount', 'FailureRate'] }), name)
  assert.deepEqual(data.map((d) => d.MetricName), ['SuccessCount', 'FailureRate'])
  assert.deepEqual(data[0].Dimensions, [{ Name: 'Service', Value: name }, { Name: 'Environment', Value: 'prod' }])
  assert.deepEqual(data[1].Dimensions.map((d) => d.Name), ['Service', 'State', 'Environment'])
  assert.throws(() => toCloudWatchMetricData({ metrics: ['Nope'] }), /metrics must be/)
  assert.throws(() => toCloudWatchMetricData({ dimensions: [{ Name: 'Service', Value: 'x' }] }), /Service/)
  assert.throws(() => toCloudWatchMetricData({ dimensions: 'x' }), TypeError)
  for (const bad of [{ Name: 'Env', Value: 'prød' }, { Name: 'Env', Value: '  ' }, { Name: 'Env', Value: 'a\tb' }, { Name: ':Env', Value: 'x' }, { Name: 'Env', Value: 'x'.repeat(1025) }]) {
    assert.throws(() => toCloudWatchMetricData({ dimensions: [bad] }), (e) => e instanceof TypeError && /not valid in CloudWatch/.test(e.message), JSON.stringify(bad))
  }
  b.dispose()
})

/** A client that records PutMetricData inputs (the aggregated-client shape). */
function recordingClient(failFirst = 0) {
  const inputs = []
  let failures = failFirst
  return {
    inputs,
    async putMetricData(input) {
      if (failures > 0) { failures--; throw new Error('throttled') }
      inputs.push(structuredClone(input))
      return {}
    },
  }
}

test('publishToCloudWatch: respects 1000 metrics per request and keeps a circuit in one request', async () => {
  const made = []
  for (let i = 0; i < 130; i++) made.push(new CircuitBreaker({ name: uniq(`cw-many-${i}`), logger: null }))
  await okN(made[0], 1)
  const client = recordingClient()
  const r = await publishToCloudWatch(client, { namespace: 'Breakwater/Test' })
  assert.ok(r.requests >= 2, `${r.requests} requests`)
  assert.equal(client.inputs.length, r.requests)
  let total = 0
  const where = new Map()
  for (const [i, input] of client.inputs.entries()) {
    assert.equal(input.Namespace, 'Breakwater/Test')
    assert.ok(input.MetricData.length <= 1000, `${input.MetricData.length} metrics in one request`)
    assert.ok(Buffer.byteLength(JSON.stringify(input)) < 1024 * 1024)
    total += input.MetricData.length
    for (const d of input.MetricData) {
      const svc = d.Dimensions[0].Value
      if (where.has(svc)) assert.equal(where.get(svc), i, `${svc} split across requests`)
      where.set(svc, i)
    }
  }
  assert.equal(total, r.metrics)
  for (const b of made) assert.ok(where.has(b.name))

  // the byte limit splits too (made small here)
  const small = recordingClient()
  const r2 = await publishToCloudWatch(small, { namespace: 'Breakwater/Test', maxRequestBytes: 20_000 })
  assert.ok(r2.requests > r.requests)
  for (const b of made) b.dispose()
})

test('publishToCloudWatch: a failed request rejects, and its counts are published next time', async () => {
  const name = uniq('cw-retry')
  const b = new CircuitBreaker({ name, logger: null })
  toCloudWatchMetricData() // baseline for every other circuit of this process
  await okN(b, 4)
  const client = recordingClient(1)
  await assert.rejects(publishToCloudWatch(client, { namespace: 'Breakwater/Test' }), (e) => {
    assert.ok(e instanceof AggregateError)
    assert.match(e.message, /PutMetricData/)
    assert.equal(e.errors[0].message, 'throttled')
    return true
  })
  await okN(b, 1)
  await publishToCloudWatch(client, { namespace: 'Breakwater/Test' })
  const sent = client.inputs.flatMap((i) => i.MetricData)
  assert.equal(valueOf(sent, name, 'SuccessCount').Value, 5)
  b.dispose()
})

test('publishToCloudWatch: validates its arguments', async () => {
  await assert.rejects(publishToCloudWatch({}, { namespace: 'X' }), /CloudWatchClient/)
  await assert.rejects(publishToCloudWatch(recordingClient(), {}), /namespace/)
  await assert.rejects(publishToCloudWatch(recordingClient(), { namespace: 'AWS/Lambda' }), /reserved/)
})

test('publishToCloudWatch: a client whose SDK cannot be found (a bundled SDK) rejects with a TypeError naming PutMetricDataCommand; no count is lost', async () => {
  const name = uniq('cw-nocommand')
  const b = new CircuitBreaker({ name, logger: null })
  await okN(b, 2)
  const sent = []
  const bundled = { async send(command) { sent.push(command.input) } } // not a CloudWatchClient of any SDK copy on disk
  await assert.rejects(publishToCloudWatch(bundled, { namespace: 'N' }), (e) => e instanceof TypeError && /pass it/.test(e.message) && /PutMetricDataCommand \}\)/.test(e.message))
  assert.equal(sent.length, 0)
  class PutMetricDataCommand { constructor(input) { this.input = input } }
  await publishToCloudWatch(bundled, { namespace: 'N', PutMetricDataCommand })
  assert.equal(valueOf(sent.flatMap((i) => i.MetricData), name, 'SuccessCount').Value, 2)
  b.dispose()
})

let moto = null
before(async () => {
  if (has('moto_server')) moto = await startMoto()
})
after(async () => {
  if (moto) await moto.stop()
})

async function sumOf(client, namespace, metric, dimensions, stat = 'Sum') {
  const { GetMetricStatisticsCommand } = require('@aws-sdk/client-cloudwatch')
  const r = await client.send(new GetMetricStatisticsCommand({
    Namespace: namespace, MetricName: metric, Dimensions: dimensions,
    StartTime: new Date(Date.now() - 3600_000), EndTime: new Date(Date.now() + 3600_000),
    Period: 60, Statistics: [stat],
  }))
  return r.Datapoints.reduce((a, d) => a + d[stat], 0)
}

test('publishToCloudWatch with the real SDK against moto: GetMetricStatistics returns the sums', async (t) => {
  if (!requireTool(t, 'moto_server')) return
  const client = cloudWatchClient(moto.endpoint)
  const namespace = `Breakwater/${uniq('ns')}`
  const name = uniq('cw-moto')
  const b = new CircuitBreaker({ name, logger: null, minimumRequests: 10, failureThreshold: 0.9 })
  await okN(b, 7)
  await failN(b, 3)
  const r1 = await publishToCloudWatch(client, { namespace })
  assert.ok(r1.requests >= 1)
  await okN(b, 5)
  await publishToCloudWatch(client, { namespace }) // the default path: PutMetricDataCommand loaded from the SDK
  const { PutMetricDataCommand } = require('@aws-sdk/client-cloudwatch')
  await failN(b, 1)
  await publishToCloudWatch(client, { namespace, PutMetricDataCommand })

  const service = [{ Name: 'Service', Value: name }]
  assert.equal(await sumOf(client, namespace, 'SuccessCount', service), 12)
  assert.equal(await sumOf(client, namespace, 'FailureCount', service), 4)
  assert.equal(await sumOf(client, namespace, 'TotalRequests', service), 16)
  assert.equal(await sumOf(client, namespace, 'RejectionCount', service), 0)
  assert.equal(await sumOf(client, namespace, 'FailureRate', [...service, { Name: 'State', Value: 'CLOSED' }], 'SampleCount'), 3)
  assert.equal(await sumOf(client, namespace, 'FailureRate', [...service, { Name: 'State', Value: 'CLOSED' }], 'Maximum'), 30)

  const { ListMetricsCommand } = require('@aws-sdk/client-cloudwatch')
  const list = await client.send(new ListMetricsCommand({ Namespace: namespace, MetricName: 'FailureRate' }))
  assert.ok(list.Metrics.some((m) => m.Dimensions.some((d) => d.Name === 'State' && d.Value === 'CLOSED')))
  b.dispose()
})

test('publishToCloudWatch against moto: more than 1000 metrics in several accepted requests', async (t) => {
  if (!requireTool(t, 'moto_server')) return
  const client = cloudWatchClient(moto.endpoint)
  const namespace = `Breakwater/${uniq('ns-many')}`
  const made = []
  for (let i = 0; i < 120; i++) made.push(new CircuitBreaker({ name: uniq(`cw-moto-many-${i}`), logger: null }))
  for (const b of made) await okN(b, 2)
  const r = await publishToCloudWatch(client, { namespace })
  assert.ok(r.requests >= 2 && r.metrics >= 120 * 9, JSON.stringify(r))
  assert.equal(await sumOf(client, namespace, 'SuccessCount', [{ Name: 'Service', Value: made[0].name }]), 2)
  assert.equal(await sumOf(client, namespace, 'SuccessCount', [{ Name: 'Service', Value: made[119].name }]), 2)
  for (const b of made) b.dispose()
})

// Issue 12 item 8b: right after a probe closed the circuit, one failure published
// FailureRate 100 and the generated alarm (Maximum > 50 in one period) fired.
test('FailureRate is published only while the window holds the effective minimumRequests (both exporters)', async () => {
  const { emitEmf } = require('../index.js')
  const { sleep } = require('./helpers.js')
  const rates = (name) => {
    const cw = mine(toCloudWatchMetricData(), name)
    const emf = []
    emitEmf({ namespace: 'N', write: (l) => emf.push(JSON.parse(l)) })
    const mineEmf = emf.filter((d) => d.Service === name)
    const state = cw.find((d) => d.MetricName === 'CircuitState')
    assert.equal(mineEmf.find((d) => 'CircuitState' in d).CircuitState, state.Value, 'CircuitState is always published')
    return {
      cw: cw.filter((d) => d.MetricName === 'FailureRate').map((d) => d.Value),
      emf: mineEmf.filter((d) => 'FailureRate' in d).map((d) => d.FailureRate),
      state: state.Value,
    }
  }
  const name = uniq('cw-min')
  const b = new CircuitBreaker({ name, logger: null, minimumRequests: 5, resetTimeout: 50 })
  await failN(b, 4)
  assert.deepEqual(rates(name), { cw: [], emf: [], state: 0 }, '4 calls of 5 needed: no rate')
  await failN(b, 1)
  assert.equal(b.state, 'OPEN')
  assert.deepEqual(rates(name), { cw: [100], emf: [100], state: 2 }, 'the rate that tripped it')
  await sleep(120)
  await okN(b, 1) // the probe closes the circuit: a fresh window
  assert.equal(b.state, 'CLOSED')
  await failN(b, 1)
  assert.deepEqual(rates(name), { cw: [], emf: [], state: 0 }, 'one failure after recovery is not a 100% (or 50%) failure rate')
  b.dispose()

  // a count window smaller than minimumRequests: the effective minimum is its size
  const small = new CircuitBreaker({ name: uniq('cw-min-count'), logger: null, minimumRequests: 10, window: { type: 'count', size: 3 }, failureThreshold: 1 })
  await okN(small, 2)
  assert.deepEqual(rates(small.name).cw, [])
  await failN(small, 1)
  assert.deepEqual(rates(small.name), { cw: [33.333], emf: [33.333], state: 0 })
  small.dispose()

  // forced open with an empty window: no rate, but CircuitState says OPEN (what the open alarm watches)
  const forced = new CircuitBreaker({ name: uniq('cw-min-forced'), logger: null })
  forced.open()
  assert.deepEqual(rates(forced.name), { cw: [], emf: [], state: 2 })
  forced.dispose()
})
