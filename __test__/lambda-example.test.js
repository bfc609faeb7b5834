'use strict'
// examples/lambda: the TypeScript handler type-checks with tsc --strict, esbuild bundles it with
// breakwater external, and the bundle, deployed the way CDK's `nodeModules: ['breakwater']`
// deploys it (index.js next to an npm-installed node_modules/breakwater + platform package),
// serves a sample API Gateway event in a fresh Node process against local fake payments and
// weather APIs: the weather fallback answers, a declined card is not an outage, failing
// payments trip the circuit, the open circuit answers 503 without calling the API, and every
// invocation writes EMF lines.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const http = require('node:http')
const { execFile, spawnSync } = require('node:child_process')
const { stageInstall } = require('../scripts/stage-install.js')

const ROOT = path.join(__dirname, '..')
const EXAMPLE = path.join(ROOT, 'examples', 'lambda')
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
const HAS_ESBUILD = fs.existsSync(path.join(ROOT, 'node_modules', 'esbuild'))

let dir
let app
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'breakwater-lambda-'))
  app = stageInstall(dir).app // node_modules/breakwater + breakwater-<platform>, from the packed tarballs
})
after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
})

test('the handler and the metrics snippets type-check with tsc --strict against the installed package', { skip: !fs.existsSync(TSC) && 'typescript not installed' }, () => {
  fs.mkdirSync(path.join(app, 'src'), { recursive: true })
  // the handler and the README's metrics snippets (emf.ts, put-metric-data.ts, which import the SDK)
  for (const f of fs.readdirSync(path.join(EXAMPLE, 'src'))) fs.copyFileSync(path.join(EXAMPLE, 'src', f), path.join(app, 'src', f))
  fs.mkdirSync(path.join(app, 'node_modules', '@aws-sdk'), { recursive: true })
  fs.symlinkSync(path.join(ROOT, 'node_modules', '@aws-sdk', 'client-cloudwatch'), path.join(app, 'node_modules', '@aws-sdk', 'client-cloudwatch'))
  const tsconfig = JSON.parse(fs.readFileSync(path.join(EXAMPLE, 'tsconfig.json'), 'utf8'))
  tsconfig.compilerOptions.typeRoots = [path.join(ROOT, 'node_modules', '@types')]
  fs.writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify(tsconfig))
  const r = spawnSync(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: app, encoding: 'utf8' })
  assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`)
})

test('esbuild bundles the handler with breakwater external', { skip: !HAS_ESBUILD && 'esbuild not installed' }, () => {
  const r = spawnSync(process.execPath, [path.join(EXAMPLE, 'build.mjs'), app], { cwd: ROOT, encoding: 'utf8' })
  assert.equal(r.status, 0, `build.mjs failed:\n${r.stdout}${r.stderr}`)
  const bundle = fs.readFileSync(path.join(app, 'index.js'), 'utf8')
  assert.match(bundle, /require\("breakwater"\)/)
  assert.doesNotMatch(bundle, /binding\.js|Atomics|napi/i, 'breakwater itself was bundled')
})

/** A fake payments API (amount 999 -> 503, 402 -> 402 declined) and a weather API that is down. */
function fakeApis() {
  const hits = { payments: 0, weather: 0, log: [] }
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (c) => { body += c })
    req.on('end', () => {
      if (req.url.startsWith('/v1/payment_intents') && req.method === 'POST') {
        hits.payments++
        hits.log.push(`${req.headers['idempotency-key']}:${new URLSearchParams(body).get('amount')}`)
        const form = new URLSearchParams(body)
        const amount = Number(form.get('amount'))
        if (amount === 999) return res.writeHead(503).end('{"error":"unavailable"}')
        if (amount === 402) return res.writeHead(402).end('{"error":{"code":"card_declined"}}')
        res.writeHead(200, { 'content-type': 'application/json' })
        return res.end(JSON.stringify({ id: `pi_${hits.payments}`, status: 'requires_confirmation', amount, currency: form.get('currency') }))
      }
      if (req.url.startsWith('/v1/forecast')) {
        hits.weather++
        return res.writeHead(503).end('weather is down')
      }
      res.writeHead(404).end()
    })
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, hits, url: `http://127.0.0.1:${server.address().port}` })))
}

const INVOKE = `
// A stand-in for the Lambda runtime: loads the bundle once (one warm environment) and
// invokes the handler with the sample event, once per amount.
const { handler } = require('./index.js')
const base = require(process.argv[2])
const amounts = JSON.parse(process.argv[3])
;(async () => {
  for (const [i, amount] of amounts.entries()) {
    const event = { ...base, requestContext: { ...base.requestContext, requestId: 'req-' + i }, body: JSON.stringify({ ...JSON.parse(base.body), amount }) }
    const result = await handler(event)
    process.stdout.write('RESULT ' + JSON.stringify(result) + '\\n')
  }
})()
`

test('the bundled handler serves API Gateway events in a fresh process', { skip: !HAS_ESBUILD && 'esbuild not installed', timeout: 30_000 }, async () => {
  assert.ok(fs.existsSync(path.join(app, 'index.js')), 'bundle missing')
  fs.writeFileSync(path.join(app, 'invoke.cjs'), INVOKE)
  const apis = await fakeApis()
  try {
    // ok, declined, 4 x payments down (the 4th trips: 4 failures of 5 calls), then ok again
    const amounts = [2000, 402, 999, 999, 999, 999, 2000]
    const { stdout, stderr } = await new Promise((resolve, reject) => {
      execFile(process.execPath, ['invoke.cjs', path.join(EXAMPLE, 'events', 'checkout.json'), JSON.stringify(amounts)], {
        cwd: app,
        timeout: 20_000,
        env: { ...process.env, PAYMENTS_API_URL: apis.url, WEATHER_API_URL: apis.url, POWERTOOLS_METRICS_NAMESPACE: 'CheckoutTest' },
      }, (err, stdout, stderr) => (err ? reject(Object.assign(err, { message: `${err.message}\n${stdout}\n${stderr}` })) : resolve({ stdout, stderr })))
    })
    const lines = stdout.split('\n').filter(Boolean)
    const results = lines.filter((l) => l.startsWith('RESULT ')).map((l) => JSON.parse(l.slice(7)))
    assert.deepEqual(results.map((r) => r.statusCode), [200, 402, 502, 502, 502, 502, 503], stderr)

    const first = JSON.parse(results[0].body)
    assert.equal(first.paymentIntent, 'pi_1')
    assert.deepEqual(first.forecast, { city: 'unknown', temperatureC: null, stale: true }) // weather fallback
    assert.equal(results[6].headers['retry-after'], '30')
    assert.equal(JSON.parse(results[6].body).circuit, 'payments')
    assert.equal(apis.hits.payments, 6, `the open circuit must not call the payments API: ${apis.hits.log}`)
    assert.ok(apis.hits.weather <= 3, `the weather circuit opened after 3 failures (hits: ${apis.hits.weather})`)

    const emf = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
    assert.ok(emf.length >= amounts.length * 2, `EMF lines: ${emf.length}\n${stdout}`)
    for (const d of emf) assert.equal(d._aws.CloudWatchMetrics[0].Namespace, 'CheckoutTest')
    const rates = emf.filter((d) => d.Service === 'payments' && 'FailureRate' in d)
    assert.equal(rates.at(-1).State, 'OPEN')
    assert.equal(rates.at(-1).FailureRate, 80)
    const weatherCounts = emf.filter((d) => d.Service === 'weather' && 'FallbackCount' in d)
    assert.equal(weatherCounts.reduce((n, d) => n + d.FallbackCount, 0), amounts.length) // every invocation: down, then open
  } finally {
    apis.server.close()
  }
})
