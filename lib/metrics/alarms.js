'use strict'
// CloudWatch alarm and dashboard definitions for the metrics publishToCloudWatch and emitEmf
// write. Each alarm is a PutMetricAlarm input, which is also the Properties of an
// AWS::CloudWatch::Alarm resource; the dashboard is a PutDashboard input, also the Properties
// of an AWS::CloudWatch::Dashboard.

const crypto = require('node:crypto')
const { metricsSnapshot } = require('../registry.js')
const { checkNamespace } = require('./cloudwatch.js')
const { cloudWatchDimensionValue } = require('./dimension.js')

const STATES = [['closed', 'CLOSED'], ['half_open', 'HALF_OPEN'], ['open', 'OPEN']]

function common(where, options) {
  if (!options || typeof options !== 'object') throw new TypeError(`breakwater: ${where}: options must be an object with a namespace`)
  checkNamespace(where, options.namespace)
  let circuits = options.circuits
  if (circuits === undefined) circuits = metricsSnapshot().map((c) => c.name)
  if (!Array.isArray(circuits) || circuits.some((c) => typeof c !== 'string' || c.length === 0)) {
    throw new TypeError(`breakwater: ${where}: circuits must be an array of circuit names, got ${JSON.stringify(circuits)}`)
  }
  const periodSeconds = options.periodSeconds ?? 60
  if (![10, 30].includes(periodSeconds) && !(Number.isInteger(periodSeconds) && periodSeconds >= 60 && periodSeconds % 60 === 0)) {
    throw new RangeError(`breakwater: ${where}: periodSeconds must be 10, 30 or a multiple of 60, got ${periodSeconds}`)
  }
  const failureRateThreshold = options.failureRateThreshold ?? 50
  if (typeof failureRateThreshold !== 'number' || !(failureRateThreshold > 0 && failureRateThreshold <= 100)) {
    throw new RangeError(`breakwater: ${where}: failureRateThreshold is a percentage in (0, 100] (CloudWatch's FailureRate is in Percent), got ${failureRateThreshold}`)
  }
  return { namespace: options.namespace, circuits: [...new Set(circuits)], periodSeconds, failureRateThreshold }
}

// `service` is the published dimension value: cloudWatchDimensionValue(name)
const rateMetric = (namespace, service, state) => ({
  Namespace: namespace,
  MetricName: 'FailureRate',
  Dimensions: [{ Name: 'Service', Value: service }, { Name: 'State', Value: state }],
})

/**
 * Two alarms per circuit: `<prefix><name>-circuit-open` (`CircuitState` reached 2: the
 * circuit was OPEN in the period, however it got there -- a trip, `open()`, another instance
 * of the fleet) and `<prefix><name>-failure-rate` (the failure rate, whatever the state,
 * above `failureRateThreshold` percent; FailureRate is only published while the window holds
 * at least minimumRequests calls). `<name>` is the published `Service` value.
 * @param {{ namespace: string, circuits?: string[], failureRateThreshold?: number, periodSeconds?: number,
 *   evaluationPeriods?: number, alarmNamePrefix?: string, alarmActions?: string[], okActions?: string[] }} options
 *   `circuits` defaults to the circuits registered now.
 * @returns {object[]} PutMetricAlarm inputs (= AWS::CloudWatch::Alarm Properties)
 */
function cloudWatchAlarms(options) {
  return alarmsFor(options).map((a) => a.alarm)
}

function alarmsFor(options) {
  const where = 'cloudWatchAlarms(options)'
  const o = common(where, options)
  const prefix = options.alarmNamePrefix ?? 'breakwater-'
  if (typeof prefix !== 'string') throw new TypeError(`breakwater: ${where}: alarmNamePrefix must be a string`)
  const evaluationPeriods = options.evaluationPeriods ?? 1
  if (!Number.isInteger(evaluationPeriods) || evaluationPeriods < 1) throw new RangeError(`breakwater: ${where}: evaluationPeriods must be an integer >= 1, got ${evaluationPeriods}`)
  const actions = {}
  for (const [opt, key] of [['alarmActions', 'AlarmActions'], ['okActions', 'OKActions']]) {
    if (options[opt] === undefined) continue
    if (!Array.isArray(options[opt]) || options[opt].some((a) => typeof a !== 'string')) throw new TypeError(`breakwater: ${where}: ${opt} must be an array of ARNs`)
    actions[key] = [...options[opt]]
  }
  const alarms = []
  for (const name of o.circuits) {
    const service = cloudWatchDimensionValue(name)
    alarms.push({ circuit: name, kind: 'OpenAlarm', alarm: {
      AlarmName: `${prefix}${service}-circuit-open`.slice(0, 255),
      AlarmDescription: `breakwater circuit ${service} is OPEN (calls are failing fast)`,
      Namespace: o.namespace,
      MetricName: 'CircuitState',
      Dimensions: [{ Name: 'Service', Value: service }],
      Statistic: 'Maximum',
      Period: o.periodSeconds,
      EvaluationPeriods: evaluationPeriods,
      Threshold: 2,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
      ...actions,
    } })
    alarms.push({ circuit: name, kind: 'FailureRateAlarm', alarm: {
      AlarmName: `${prefix}${service}-failure-rate`.slice(0, 255),
      AlarmDescription: `breakwater circuit ${service}: failure rate above ${o.failureRateThreshold}%`,
      Metrics: [
        ...STATES.map(([id, state]) => ({
          Id: id,
          MetricStat: { Metric: rateMetric(o.namespace, service, state), Period: o.periodSeconds, Stat: 'Maximum' },
          ReturnData: false,
        })),
        { Id: 'failure_rate', Expression: 'MAX([closed, half_open, open])', Label: `${service} failure rate`, ReturnData: true },
      ],
      EvaluationPeriods: evaluationPeriods,
      Threshold: o.failureRateThreshold,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
      ...actions,
    } })
  }
  return alarms
}

/**
 * A dashboard with, per circuit, its calls by result and its failure rate by state.
 * @param {{ namespace: string, circuits?: string[], region?: string, dashboardName?: string,
 *   failureRateThreshold?: number, periodSeconds?: number }} options `region` defaults to AWS_REGION.
 * @returns {{ DashboardName: string, DashboardBody: string }} the PutDashboard input
 *   (= AWS::CloudWatch::Dashboard Properties); DashboardBody is the JSON text of the body
 */
function cloudWatchDashboard(options) {
  const where = 'cloudWatchDashboard(options)'
  const o = common(where, options)
  const region = options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION
  if (typeof region !== 'string' || !/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) {
    throw new TypeError(`breakwater: ${where}: region must be an AWS region such as 'us-east-1' (or set AWS_REGION), got ${JSON.stringify(region)}`)
  }
  const dashboardName = options.dashboardName ?? 'breakwater'
  if (typeof dashboardName !== 'string' || !/^[A-Za-z0-9_-]{1,255}$/.test(dashboardName)) {
    throw new TypeError(`breakwater: ${where}: dashboardName may hold only A-Z, a-z, 0-9, - and _ (1-255), got ${JSON.stringify(dashboardName)}`)
  }
  const widgets = [{
    type: 'text', x: 0, y: 0, width: 24, height: 1,
    properties: { markdown: `## Circuit breakers (namespace ${o.namespace})` },
  }]
  let y = 1
  for (const name of o.circuits) {
    const service = ['Service', cloudWatchDimensionValue(name)]
    widgets.push({
      type: 'metric', x: 0, y, width: 12, height: 6,
      properties: {
        title: `${name}: calls`,
        region, view: 'timeSeries', stacked: false, period: o.periodSeconds, stat: 'Sum',
        metrics: ['SuccessCount', 'FailureCount', 'RejectionCount', 'TimeoutCount', 'FallbackCount']
          .map((m) => [o.namespace, m, ...service, { label: m.replace(/Count$/, '') }]),
      },
    })
    widgets.push({
      type: 'metric', x: 12, y, width: 12, height: 6,
      properties: {
        title: `${name}: failure rate (%) by state`,
        region, view: 'timeSeries', stacked: false, period: o.periodSeconds, stat: 'Maximum',
        metrics: STATES.map(([, state]) => [o.namespace, 'FailureRate', ...service, 'State', state, { label: state }]),
        yAxis: { left: { min: 0, max: 100 } },
        annotations: { horizontal: [{ label: 'alarm threshold', value: o.failureRateThreshold }] },
      },
    })
    y += 6
  }
  return { DashboardName: dashboardName, DashboardBody: JSON.stringify({ widgets }) }
}

function logicalId(kind, name) {
  const clean = name.replace(/[^A-Za-z0-9]/g, '').slice(0, 100)
  const hash = crypto.createHash('sha256').update(name).digest('hex').slice(0, 8).toUpperCase()
  return `Breakwater${clean}${hash}${kind}`
}

/**
 * The alarms and the dashboard as a CloudFormation `Resources` map (merge it into a
 * template, or into a CDK stack with `new CfnInclude` / `new CfnResource(stack, id, { type, properties })`).
 * @param {Parameters<typeof cloudWatchAlarms>[0] & Parameters<typeof cloudWatchDashboard>[0]} options
 * @returns {Record<string, { Type: string, Properties: object }>}
 */
function cloudFormationResources(options) {
  const resources = {}
  for (const { circuit, kind, alarm } of alarmsFor(options)) {
    resources[logicalId(kind, circuit)] = { Type: 'AWS::CloudWatch::Alarm', Properties: alarm }
  }
  resources.BreakwaterDashboard = { Type: 'AWS::CloudWatch::Dashboard', Properties: cloudWatchDashboard(options) }
  return resources
}

module.exports = { cloudWatchAlarms, cloudWatchDashboard, cloudFormationResources }
