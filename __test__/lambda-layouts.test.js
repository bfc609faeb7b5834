'use strict'
// The README's Lambda snippets (examples/lambda/src/emf.ts and put-metric-data.ts, which the
// README shows verbatim) built in each documented layout and run the way Lambda runs them:
// - a zip by hand: the README's commands run as written (esbuild with the AWS SDK inside the
//   bundle and breakwater external, `npm install --prefix dist ... breakwater` from a local
//   registry holding the packed tarballs, zip), unzipped into a task root;
// - CDK's NodejsFunction: esbuild with CDK's default externals (`@aws-sdk/*`, so the runtime's
//   SDK is used) plus `nodeModules: ['breakwater']`, npm-installed into the asset;
// - SAM: `make build-CheckoutFunction` of examples/lambda (BuildMethod: makefile);
// each invoked by a bootstrap that loads index.handler from LAMBDA_TASK_ROOT, with the
// runtime's own SDK on NODE_PATH, and CloudWatch = moto_server on 127.0.0.1.
// Issue 12 item 8d: the zip layout made publishToCloudWatch reject on every call.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { promisify } = require('node:util')
const { packAll } = require('../scripts/stage-install.js')
const { localRegistry, npmEnv, makeRuntime, invoke } = require('./helpers/lambda-runtime.js')
const { requireTool, startMoto, cloudWatchClient, freePort, has } = require('./helpers/tools.js')

const ROOT = path.join(__dirname, '..')
const EXAMPLE = path.join(ROOT, 'examples', 'lambda')
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')
const SNIPPETS = { emf: path.join(EXAMPLE, 'src', 'emf.ts'), putMetricData: path.join(EXAMPLE, 'src', 'put-metric-data.ts') }
// the README installs for arm64; this machine can only load its own architecture's binary
const CPU = process.arch
// asynchronous: the local registry answers npm from this very process
const run = (cmd, args, opts) => promisify(require('node:child_process').execFile)(cmd, args, { maxBuffer: 64 << 20, ...opts })

let dir, registry, runtime, moto, deadUrl
before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'breakwater-layouts-'))
  registry = await localRegistry(packAll(dir))
  runtime = await makeRuntime(dir)
  if (has('moto_server')) moto = await startMoto()
  deadUrl = `http://127.0.0.1:${await freePort()}` // nothing listens: the weather API is down
})
after(async () => {
  if (registry) await registry.close()
  if (moto) await moto.stop()
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
})

/** What the function sees: a region of its own in moto (layouts do not add up), test credentials. */
const awsEnv = (region, extra = {}) => ({
  AWS_REGION: region, AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_MAX_ATTEMPTS: '1',
  AWS_ENDPOINT_URL_CLOUDWATCH: moto ? moto.endpoint : deadUrl, WEATHER_API_URL: deadUrl, ...extra,
})

async function sums(region, metric) {
  const { GetMetricStatisticsCommand } = require('@aws-sdk/client-cloudwatch')
  const client = cloudWatchClient(moto.endpoint)
  client.config.region = async () => region
  const r = await client.send(new GetMetricStatisticsCommand({
    Namespace: 'Checkout', MetricName: metric, Dimensions: [{ Name: 'Service', Value: 'weather' }],
    StartTime: new Date(Date.now() - 3600_000), EndTime: new Date(Date.now() + 3600_000), Period: 60, Statistics: ['Sum'],
  }))
  return r.Datapoints.reduce((a, d) => a + d.Sum, 0)
}

test('the README shows the snippets exactly as the files hold them', () => {
  for (const file of Object.values(SNIPPETS)) assert.ok(README.includes('```ts\n' + fs.readFileSync(file, 'utf8') + '```'), `${path.basename(file)} is not in the README as written`)
})

/** A user's project: package.json, the SDK installed, src/handler.ts = the snippet (optionally edited). */
function project(name, snippet, edit = (s) => s) {
  const app = path.join(dir, name)
  fs.mkdirSync(path.join(app, 'src'), { recursive: true })
  fs.mkdirSync(path.join(app, 'node_modules', '@aws-sdk'), { recursive: true })
  fs.symlinkSync(path.join(ROOT, 'node_modules', '@aws-sdk', 'client-cloudwatch'), path.join(app, 'node_modules', '@aws-sdk', 'client-cloudwatch'))
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name, private: true, dependencies: { '@aws-sdk/client-cloudwatch': '*', breakwater: '^0.1.0' } }))
  const source = fs.readFileSync(snippet, 'utf8')
  const edited = edit(source)
  if (edit !== project.same) assert.notEqual(edited, source, 'the edit changed nothing')
  fs.writeFileSync(path.join(app, 'src', 'handler.ts'), edited)
  return app
}
project.same = (s) => s

/** The README's zip-by-hand commands, run as written in `app`; returns the unzipped task root. */
async function zipByHand(t, app) {
  if (!requireTool(t, 'zip') || !requireTool(t, 'unzip')) return null
  const block = /\*\*A zip by hand\*\*[\s\S]*?```sh\n([\s\S]*?)```/.exec(README)
  assert.ok(block, 'the README has the zip-by-hand commands')
  const env = { ...process.env, ...npmEnv(registry, dir), PATH: `${path.join(ROOT, 'node_modules', '.bin')}${path.delimiter}${process.env.PATH}` }
  for (const line of block[1].trim().split('\n')) {
    await run('sh', ['-c', line.replace('--cpu=arm64', `--cpu=${CPU}`)], { cwd: app, env })
  }
  const task = path.join(app, 'task')
  fs.mkdirSync(task)
  await run('unzip', ['-q', path.join(app, 'function.zip'), '-d', task])
  assert.ok(fs.existsSync(path.join(task, 'node_modules', 'breakwater', 'package.json')), 'breakwater is in the zip')
  assert.ok(!fs.existsSync(path.join(app, 'node_modules', 'breakwater')), 'npm installed into dist/, not into the project')
  return task
}

const FALLBACK = { temperatureC: null, stale: true }

test('zip by hand, SDK bundled: the PutMetricData snippet publishes to CloudWatch', { timeout: 180_000 }, async (t) => {
  if (!requireTool(t, 'moto_server')) return
  const task = await zipByHand(t, project('zip-pmd', SNIPPETS.putMetricData, project.same))
  if (!task) return
  const bundle = fs.readFileSync(path.join(task, 'index.js'), 'utf8')
  assert.match(bundle, /require\("breakwater"\)/)
  assert.doesNotMatch(bundle, /require\("@aws-sdk\/client-cloudwatch"\)/, 'the SDK is inside the bundle')
  const r = await invoke(runtime, task, [{ city: 'Oslo' }, {}, { city: 'Zürich' }], awsEnv('eu-west-1'))
  assert.deepEqual(r.results, [FALLBACK, FALLBACK, FALLBACK])
  assert.doesNotMatch(r.stderr, /breakwater metrics/, r.stderr)
  assert.equal(await sums('eu-west-1', 'FailureCount'), 3)
  assert.equal(await sums('eu-west-1', 'FallbackCount'), 3)
})

test('zip by hand, SDK bundled, without PutMetricDataCommand: a TypeError that says to pass it (the handler still answers)', { timeout: 180_000 }, async (t) => {
  const task = await zipByHand(t, project('zip-pmd-nocommand', SNIPPETS.putMetricData, (s) => s.replace("{ namespace: 'Checkout', PutMetricDataCommand }", "{ namespace: 'Checkout' }")))
  if (!task) return
  const r = await invoke(runtime, task, [{}], awsEnv('eu-north-1'))
  assert.deepEqual(r.results, [FALLBACK])
  assert.match(r.stderr, /breakwater metrics: breakwater: publishToCloudWatch\(client, \{ namespace \}\): cannot find the PutMetricDataCommand[^\n]*pass it[^\n]*PutMetricDataCommand \}\)/)
})

test('zip by hand: the EMF snippet writes EMF lines (namespace from POWERTOOLS_METRICS_NAMESPACE, else Breakwater)', { timeout: 180_000 }, async (t) => {
  const task = await zipByHand(t, project('zip-emf', SNIPPETS.emf, project.same))
  if (!task) return
  for (const [ns, expected] of [[undefined, 'Breakwater'], ['Checkout', 'Checkout']]) {
    const r = await invoke(runtime, task, [{}, {}], awsEnv('us-west-2', ns ? { POWERTOOLS_METRICS_NAMESPACE: ns } : {}))
    assert.deepEqual(r.results, [FALLBACK, FALLBACK])
    const emf = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
    const counts = emf.filter((d) => d.Service === 'weather' && 'FallbackCount' in d)
    assert.equal(counts.length, 2)
    assert.equal(counts.reduce((n, d) => n + d.FallbackCount, 0), 2)
    for (const d of emf) assert.equal(d._aws.CloudWatchMetrics[0].Namespace, expected)
  }
})

/** CDK NodejsFunction: esbuild with CDK's default externals, then npm install of nodeModules into the asset. */
async function cdkAsset(app) {
  const { build } = require('esbuild')
  const asset = path.join(app, 'asset')
  await build({
    entryPoints: [path.join(app, 'src', 'handler.ts')], bundle: true, platform: 'node', target: 'node22', format: 'cjs',
    external: ['@aws-sdk/*', 'breakwater'], outfile: path.join(asset, 'index.js'), logLevel: 'error',
  })
  fs.writeFileSync(path.join(asset, 'package.json'), JSON.stringify({ dependencies: { breakwater: '^0.1.0' } }))
  // bundling.environment from the README's CDK snippet
  await run('npm', ['install'], { cwd: asset, env: { ...process.env, ...npmEnv(registry, dir), npm_config_os: 'linux', npm_config_cpu: CPU, npm_config_libc: 'glibc' } })
  return asset
}

test('CDK layout (SDK from the runtime): the PutMetricData snippet publishes, and so does { namespace } alone', { timeout: 180_000 }, async (t) => {
  if (!requireTool(t, 'moto_server')) return
  const asset = await cdkAsset(project('cdk-pmd', SNIPPETS.putMetricData, project.same))
  assert.match(fs.readFileSync(path.join(asset, 'index.js'), 'utf8'), /require\("@aws-sdk\/client-cloudwatch"\)/)
  let r = await invoke(runtime, asset, [{}, {}], awsEnv('eu-central-1'))
  assert.deepEqual(r.results, [FALLBACK, FALLBACK])
  assert.doesNotMatch(r.stderr, /breakwater metrics/, r.stderr)
  assert.equal(await sums('eu-central-1', 'FallbackCount'), 2)

  // the client and breakwater both find the runtime's SDK: the command is found by itself
  const bare = await cdkAsset(project('cdk-pmd-nocommand', SNIPPETS.putMetricData, (s) => s.replace("{ namespace: 'Checkout', PutMetricDataCommand }", "{ namespace: 'Checkout' }")))
  r = await invoke(runtime, bare, [{}, {}, {}], awsEnv('ap-southeast-2'))
  assert.deepEqual(r.results, [FALLBACK, FALLBACK, FALLBACK])
  assert.doesNotMatch(r.stderr, /breakwater metrics/, r.stderr)
  assert.equal(await sums('ap-southeast-2', 'FallbackCount'), 3)
})

test('SAM layout: make build-CheckoutFunction builds an artifact that serves the sample event', { timeout: 180_000 }, async (t) => {
  if (!requireTool(t, 'make')) return
  const artifacts = path.join(dir, 'sam-artifacts')
  fs.mkdirSync(artifacts)
  await run('make', ['-s', 'build-CheckoutFunction', `ARTIFACTS_DIR=${artifacts}`, `LAMBDA_ARCH=${CPU === 'arm64' ? 'arm64' : 'x86_64'}`], {
    cwd: EXAMPLE, env: { ...process.env, ...npmEnv(registry, dir) },
  })
  assert.ok(fs.existsSync(path.join(artifacts, 'node_modules', 'breakwater')), 'breakwater installed into the artifact')
  const event = JSON.parse(fs.readFileSync(path.join(EXAMPLE, 'events', 'checkout.json'), 'utf8'))
  const r = await invoke(runtime, artifacts, [event], awsEnv('us-east-2', { PAYMENTS_API_URL: deadUrl, POWERTOOLS_METRICS_NAMESPACE: 'CheckoutSam' }))
  assert.equal(r.results[0].statusCode, 502) // the payments API is down: the provider error, no crash
  const emf = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
  assert.deepEqual([...new Set(emf.map((d) => d.Service))].sort(), ['payments', 'weather'])
  for (const d of emf) assert.equal(d._aws.CloudWatchMetrics[0].Namespace, 'CheckoutSam')
})
