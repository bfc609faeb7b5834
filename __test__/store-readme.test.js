'use strict'
// The README's shared-state recipes, run as written: the "Lambda fleet on DynamoDB" block
// against moto_server (through AWS_ENDPOINT_URL_DYNAMODB, as any SDK v3 client reads it), and
// the "fleet on Redis with your own client" block with ioredis against a real redis-server.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { requireTool, startMoto } = require('./helpers/tools.js')
const { requireRedis, startRedis } = require('./helpers/redis.js')
const { dynamoClient, createTable } = require('./helpers/dynamodb.js')

const README = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8')

/** The first ```js block after `heading` in the README. */
function recipe(heading) {
  const at = README.indexOf(heading)
  assert.ok(at >= 0, `README has "${heading}"`)
  const m = /```js\n([\s\S]*?)```/.exec(README.slice(at))
  assert.ok(m, `a js block after "${heading}"`)
  return m[1]
}

/** Runs `code` as an ES module inside the package (so 'breakwater' resolves to it). */
function runModule(code, env) {
  const file = path.join(__dirname, `.readme-${process.pid}-${Math.random().toString(36).slice(2)}.mjs`)
  fs.writeFileSync(file, code)
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [file], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    c.stdout.on('data', (d) => { out += d })
    c.stderr.on('data', (d) => { err += d })
    const killer = setTimeout(() => c.kill('SIGKILL'), 20_000)
    c.on('exit', (code) => {
      clearTimeout(killer)
      fs.rmSync(file, { force: true })
      resolve({ code, out, err })
    })
  })
}

const CHECK = (breaker) => `
await ${breaker}.execute(async () => 'ok')
await new Promise((r) => setTimeout(r, 300))
console.log(JSON.stringify(${breaker}.getStats().store))
process.exit(0)
`

test('README: a Lambda fleet on DynamoDB, as written', async (t) => {
  if (!requireTool(t, 'moto_server')) return
  const moto = await startMoto()
  t.after(() => moto.stop())
  const admin = dynamoClient(moto.endpoint)
  await createTable(admin, 'readme-circuits')
  admin.destroy()
  const r = await runModule(recipe('### A Lambda fleet on DynamoDB') + CHECK('stripe'), {
    BREAKWATER_TABLE: 'readme-circuits', AWS_ENDPOINT_URL_DYNAMODB: moto.endpoint, AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing',
  })
  assert.equal(r.code, 0, r.err)
  const store = JSON.parse(r.out.trim().split('\n').at(-1))
  assert.equal(store.kind, 'dynamodb')
  assert.equal(store.healthy, true, store.lastError)
  assert.ok(store.lastSyncAt > 0)
})

test('README: a fleet on Redis with your own client, as written', async (t) => {
  if (!requireRedis(t)) return
  const redis = await startRedis()
  t.after(() => redis.stop())
  const r = await runModule(recipe('### A fleet on Redis with your own client') + CHECK('weather'), { REDIS_URL: redis.url })
  assert.equal(r.code, 0, r.err)
  const store = JSON.parse(r.out.trim().split('\n').at(-1))
  assert.equal(store.kind, 'redis')
  assert.equal(store.healthy, true, store.lastError)
})
