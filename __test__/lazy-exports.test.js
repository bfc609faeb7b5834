'use strict'
// Cold start: the metrics exporters load on their first call, not with the entry point, and
// their names work from CJS and ESM from the first moment, exactly as before.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const path = require('node:path')

const ROOT = path.join(__dirname, '..')
const run = (args, code) => execFileSync(process.execPath, [...args, '-e', code], { cwd: ROOT, encoding: 'utf8' })

test('require() loads none of the metrics or store modules; the first call loads only its own', () => {
  const out = JSON.parse(run([], `
    const loaded = () => Object.keys(require.cache).filter((f) => /(metrics|store)[\\\\/](?!index)/.test(f)).map((f) => require('path').basename(f))
    const bw = require('.')
    const atImport = loaded()
    const b = new bw.CircuitBreaker({ name: 'lazy-1', logger: null })
    const text = bw.toPrometheus()
    console.log(JSON.stringify({ atImport, afterCall: loaded(), text, contentType: bw.toPrometheus.contentType }))
  `))
  assert.deepEqual(out.atImport, [])
  assert.deepEqual(out.afterCall, ['prometheus.js'])
  assert.match(out.text, /^circuit_breaker_state\{name="lazy-1"\} 0$/m)
  assert.equal(out.contentType, 'text/plain; version=0.0.4; charset=utf-8')
})

test('the lazy exports are functions with their names, from CJS destructuring and ESM named imports', () => {
  const names = ['toPrometheus', 'registerPrometheusMetrics', 'toCloudWatchMetricData', 'publishToCloudWatch', 'emitEmf', 'cloudWatchAlarms', 'cloudWatchDashboard', 'cloudFormationResources', 'createStatsHandler']
  const cjs = require('..')
  for (const n of names) {
    assert.equal(typeof cjs[n], 'function', n)
    assert.equal(cjs[n].name, n)
  }
  const esm = JSON.parse(run(['--input-type=module'], `
    import { ${names.join(', ')}, CircuitBreaker } from 'breakwater'
    new CircuitBreaker({ name: 'lazy-esm', logger: null })
    const data = toCloudWatchMetricData()
    console.log(JSON.stringify({ types: [${names.join(', ')}].map((f) => typeof f), services: data.map((d) => d.Dimensions[0].Value) }))
  `))
  assert.deepEqual(esm.types, names.map(() => 'function'))
  assert.ok(esm.services.includes('lazy-esm'))
  // arguments and errors pass through the wrapper unchanged
  assert.throws(() => cjs.registerPrometheusMetrics({}), (e) => e instanceof TypeError && /registerPrometheusMetrics\(registry\)/.test(e.message))
})

test('neither the import nor a breaker and its first calls (timed, sampled) load any of Node\'s own modules but AbortController\'s', () => {
  const out = JSON.parse(run([], `
    const before = new Set(process.moduleLoadList)
    const added = () => process.moduleLoadList.filter((m) => !before.has(m))
    const bw = require('.')
    const atImport = added()
    const b = new bw.CircuitBreaker({ name: 'lazy-builtins', logger: null })
    ;(async () => {
      for (let i = 0; i < 40; i++) await b.execute(async () => i)
      await b.execute(async () => { throw new Error('x') }).catch(() => {})
      const afterCalls = added()
      process.stdout.write(JSON.stringify({ atImport, afterCalls }))
    })()
  `))
  // perf_hooks alone is ten internal modules and ~2 ms of a cold start (lib/deadlines.js)
  assert.deepEqual(out.atImport, [])
  assert.deepEqual(out.afterCalls.filter((m) => !/abort_controller/.test(m)), [])
})
