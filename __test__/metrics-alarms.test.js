'use strict'
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { CircuitBreaker, cloudWatchAlarms, cloudWatchDashboard, cloudFormationResources } = require('../index.js')
const { uniq } = require('./helpers.js')
const { requireTool, startMoto, cloudWatchClient, has } = require('./helpers/tools.js')

test('cloudWatchAlarms: an OPEN alarm and a failure-rate alarm per circuit', () => {
  const alarms = cloudWatchAlarms({ namespace: 'Breakwater/A', circuits: ['stripe', 'weather'], failureRateThreshold: 40, alarmActions: ['arn:aws:sns:us-east-1:123456789012:ops'] })
  assert.deepEqual(alarms.map((a) => a.AlarmName), ['breakwater-stripe-circuit-open', 'breakwater-stripe-failure-rate', 'breakwater-weather-circuit-open', 'breakwater-weather-failure-rate'])
  // OPEN is read from CircuitState (always published), not from FailureRate (published only
  // with minimumRequests calls in the window: a forced or fleet-wide open may have none)
  const open = alarms[0]
  assert.equal(open.MetricName, 'CircuitState')
  assert.deepEqual(open.Dimensions, [{ Name: 'Service', Value: 'stripe' }])
  assert.equal(open.Statistic, 'Maximum')
  assert.equal(open.ComparisonOperator, 'GreaterThanOrEqualToThreshold')
  assert.equal(open.Threshold, 2)
  assert.deepEqual(open.AlarmActions, ['arn:aws:sns:us-east-1:123456789012:ops'])
  const rate = alarms[1]
  assert.equal(rate.Threshold, 40)
  assert.equal(rate.ComparisonOperator, 'GreaterThanThreshold')
  assert.equal(rate.Metrics.filter((m) => m.ReturnData).length, 1)
  assert.deepEqual(rate.Metrics.filter((m) => m.MetricStat).map((m) => m.MetricStat.Metric.Dimensions[1].Value), ['CLOSED', 'HALF_OPEN', 'OPEN'])
  for (const m of rate.Metrics) assert.match(m.Id, /^[a-z][a-zA-Z0-9_]*$/)
  assert.equal(rate.MetricName, undefined)
})

test('cloudWatchAlarms / cloudWatchDashboard: default to the registered circuits; reject bad options', () => {
  const name = uniq('alarm-reg')
  const b = new CircuitBreaker({ name, logger: null })
  assert.ok(cloudWatchAlarms({ namespace: 'N' }).some((a) => a.AlarmName === `breakwater-${name}-circuit-open`))
  assert.ok(JSON.parse(cloudWatchDashboard({ namespace: 'N', region: 'eu-west-1' }).DashboardBody).widgets.some((w) => w.properties.title === `${name}: calls`))
  b.dispose()
  assert.throws(() => cloudWatchAlarms({}), /namespace/)
  assert.throws(() => cloudWatchAlarms({ namespace: 'N', failureRateThreshold: 150 }), RangeError)
  assert.throws(() => cloudWatchAlarms({ namespace: 'N', periodSeconds: 45 }), RangeError)
  assert.throws(() => cloudWatchAlarms({ namespace: 'N', circuits: 'stripe' }), TypeError)
  assert.throws(() => cloudWatchDashboard({ namespace: 'N', region: 'nowhere' }), /region/)
  assert.throws(() => cloudWatchDashboard({ namespace: 'N', region: 'us-east-1', dashboardName: 'a b' }), /dashboardName/)
})

test('cloudWatchDashboard: a body of metric widgets over the published metrics', () => {
  const d = cloudWatchDashboard({ namespace: 'Breakwater/D', circuits: ['stripe'], region: 'us-east-1' })
  assert.equal(d.DashboardName, 'breakwater')
  const body = JSON.parse(d.DashboardBody)
  const metric = body.widgets.filter((w) => w.type === 'metric')
  assert.equal(metric.length, 2)
  for (const w of body.widgets) {
    for (const k of ['x', 'y', 'width', 'height']) assert.ok(Number.isInteger(w[k]))
    assert.ok(w.x + w.width <= 24)
  }
  for (const w of metric) {
    assert.equal(w.properties.region, 'us-east-1')
    for (const row of w.properties.metrics) {
      assert.equal(row[0], 'Breakwater/D')
      assert.equal(row[2], 'Service')
      assert.equal(row[3], 'stripe')
    }
  }
})

test('cloudFormationResources: a Resources map that cfn-lint accepts', (t) => {
  const resources = cloudFormationResources({ namespace: 'Breakwater/Cfn', circuits: ['stripe', 'weather api/v2'], region: 'us-east-1' })
  const types = Object.values(resources).map((r) => r.Type).sort()
  assert.deepEqual(types, ['AWS::CloudWatch::Alarm', 'AWS::CloudWatch::Alarm', 'AWS::CloudWatch::Alarm', 'AWS::CloudWatch::Alarm', 'AWS::CloudWatch::Dashboard'])
  for (const id of Object.keys(resources)) assert.match(id, /^[A-Za-z0-9]+$/)
  if (!requireTool(t, 'cfn-lint')) return
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'breakwater-cfn-'))
  try {
    const file = path.join(dir, 'template.json')
    fs.writeFileSync(file, JSON.stringify({ AWSTemplateFormatVersion: '2010-09-09', Resources: resources }, null, 2))
    const r = spawnSync('cfn-lint', ['--regions', 'us-east-1', '--', file], { encoding: 'utf8', timeout: 120_000 })
    assert.equal(r.status, 0, `cfn-lint: ${r.stdout}${r.stderr}`)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

let moto = null
before(async () => {
  if (has('moto_server')) moto = await startMoto()
})
after(async () => {
  if (moto) await moto.stop()
})

test('the alarms and the dashboard are accepted by PutMetricAlarm and PutDashboard (moto)', async (t) => {
  if (!requireTool(t, 'moto_server')) return
  const { PutMetricAlarmCommand, DescribeAlarmsCommand, PutDashboardCommand, GetDashboardCommand } = require('@aws-sdk/client-cloudwatch')
  const client = cloudWatchClient(moto.endpoint)
  const prefix = `${uniq('bw')}-`
  const alarms = cloudWatchAlarms({ namespace: 'Breakwater/Moto', circuits: ['stripe', 'weather'], alarmNamePrefix: prefix, failureRateThreshold: 25 })
  for (const alarm of alarms) await client.send(new PutMetricAlarmCommand(alarm))
  const described = await client.send(new DescribeAlarmsCommand({ AlarmNamePrefix: prefix }))
  const byName = new Map(described.MetricAlarms.map((a) => [a.AlarmName, a]))
  assert.equal(byName.size, 4)
  const open = byName.get(`${prefix}stripe-circuit-open`)
  assert.equal(open.MetricName, 'CircuitState')
  assert.equal(open.Namespace, 'Breakwater/Moto')
  assert.equal(open.Statistic, 'Maximum')
  assert.equal(open.Threshold, 2)
  assert.deepEqual(open.Dimensions.map((d) => `${d.Name}=${d.Value}`), ['Service=stripe'])
  const rate = byName.get(`${prefix}weather-failure-rate`)
  assert.equal(rate.Threshold, 25)
  assert.equal(rate.Metrics.length, 4)
  assert.equal(rate.Metrics.find((m) => m.ReturnData).Expression, 'MAX([closed, half_open, open])')

  const dash = cloudWatchDashboard({ namespace: 'Breakwater/Moto', circuits: ['stripe', 'weather'], region: 'us-east-1', dashboardName: `${prefix}dash`.replace(/[^A-Za-z0-9_-]/g, '') })
  const put = await client.send(new PutDashboardCommand(dash))
  assert.deepEqual(put.DashboardValidationMessages || [], [])
  const got = await client.send(new GetDashboardCommand({ DashboardName: dash.DashboardName }))
  assert.deepEqual(JSON.parse(got.DashboardBody), JSON.parse(dash.DashboardBody))
})
