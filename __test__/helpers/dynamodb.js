'use strict'
// DynamoDB on moto_server for the store tests: a client with fake credentials, and the table
// the README defines (string partition key `pk`, TTL on `ttl`, on-demand). Not a test file.
const {
  DynamoDBClient, CreateTableCommand, DescribeTableCommand, UpdateTimeToLiveCommand,
} = require('@aws-sdk/client-dynamodb')

/** A DynamoDBClient on moto; `maxAttempts` 1 so an injected fault is seen as it is. */
function dynamoClient(endpoint, extra = {}) {
  return new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    ...extra,
  })
}

/** Creates the table as the README's CloudFormation does, and waits until it is ACTIVE. */
async function createTable(client, tableName) {
  try {
    await client.send(new CreateTableCommand({
      TableName: tableName,
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
    }))
  } catch (err) {
    if (err.name !== 'ResourceInUseException') throw err
  }
  for (const end = Date.now() + 30_000; ;) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }))
    if (Table.TableStatus === 'ACTIVE') break
    if (Date.now() > end) throw new Error(`table ${tableName} is not ACTIVE after 30 s`)
    await new Promise((r) => setTimeout(r, 200))
  }
  try {
    await client.send(new UpdateTimeToLiveCommand({ TableName: tableName, TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true } }))
  } catch (err) {
    if (!/already enabled/i.test(err.message || '')) throw err
  }
}

/**
 * Wraps a client: `fault` (set it any time) decides what each send does instead of sending —
 * null: send; 'throttle': reject like DynamoDB throttling; 'error': a 500; 'hang': never settle.
 * `sent` counts the commands that were sent, by name.
 */
function faultyClient(client) {
  const w = {
    fault: null,
    sent: {},
    send(command) {
      const name = command.constructor.name
      if (w.fault === 'throttle') return Promise.reject(Object.assign(new Error('Rate of requests exceeds the allowed throughput.'), { name: 'ThrottlingException', $retryable: { throttling: true } }))
      if (w.fault === 'error') return Promise.reject(Object.assign(new Error('Internal server error'), { name: 'InternalServerError', $metadata: { httpStatusCode: 500 } }))
      if (w.fault === 'hang') return new Promise(() => {})
      w.sent[name] = (w.sent[name] || 0) + 1
      return client.send(command)
    },
  }
  return w
}

module.exports = { dynamoClient, createTable, faultyClient }

/**
 * moto_server on a fixed free port that can be paused (SIGSTOP), resumed, killed and started
 * again on the same port (empty, as moto keeps everything in memory): `start()` recreates the
 * tables named in `tables`. For the fleet chaos test.
 */
async function startDynamo(tables) {
  const { spawn } = require('node:child_process')
  const { freePort } = require('./tools.js')
  const port = await freePort()
  const endpoint = `http://127.0.0.1:${port}`
  let child = null
  const api = {
    endpoint,
    pid: 0,
    async start() {
      const c = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' })
      child = c
      c.exit = new Promise((resolve) => c.on('exit', resolve))
      api.pid = c.pid
      const client = dynamoClient(endpoint, { maxAttempts: 1 })
      try {
        for (const end = Date.now() + 30_000; ;) {
          try {
            const r = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1000) })
            await r.arrayBuffer()
            break
          } catch {}
          if (Date.now() > end) throw new Error(`moto_server did not answer on ${endpoint} within 30 s`)
          await new Promise((r) => setTimeout(r, 100))
        }
        for (const t of tables) await createTable(client, t)
      } finally {
        client.destroy()
      }
    },
    pause: () => process.kill(child.pid, 'SIGSTOP'),
    resume: () => process.kill(child.pid, 'SIGCONT'),
    async kill() {
      if (child === null) return
      try { process.kill(child.pid, 'SIGCONT') } catch {}
      try { process.kill(child.pid, 'SIGKILL') } catch {}
      await child.exit
      child = null
    },
  }
  await api.start()
  return api
}

module.exports.startDynamo = startDynamo
