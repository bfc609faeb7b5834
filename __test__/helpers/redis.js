'use strict'
// A throwaway redis-server for the store tests. Not a test file. No config file and no
// persistence: every start is empty. It can be stopped and started again on the same port, to
// test "Redis went away mid-run, then came back".

const { spawn, execFile } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const net = require('node:net')
const { has, missing, freePort } = require('./tools.js')

const INSTALL = 'apt-get install redis-server'

/**
 * True when redis-server is on PATH. Otherwise: under CI throws (the test fails); elsewhere
 * marks the test `t` skipped and returns false.
 */
function requireRedis(t) {
  if (has('redis-server')) return true
  const msg = `redis-server is not installed; install it with: ${INSTALL}`
  return missing(t, msg)
}


/** Resolves true when a PING on 127.0.0.1:port gets +PONG within 1 s. */
function pings(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port })
    let got = ''
    const done = (v) => { clearTimeout(timer); s.destroy(); resolve(v) }
    const timer = setTimeout(() => done(false), 1000)
    s.on('connect', () => s.write('*1\r\n$4\r\nPING\r\n'))
    s.on('data', (d) => { got += d; if (got.includes('\r\n')) done(got.startsWith('+PONG')) })
    s.on('error', () => done(false))
    s.on('close', () => done(false))
  })
}

// Servers still running when the test process exits are killed (only those started here).
const running = new Set()
process.on('exit', () => {
  for (const child of running) try { process.kill(child.pid, 'SIGKILL') } catch {}
})

/**
 * Starts redis-server on a free port of 127.0.0.1 and waits until it answers PING.
 * `--enable-debug-command local` lets the tests use DEBUG SLEEP (Redis 7 refuses DEBUG by default).
 * @returns {Promise<{ url: string, port: number, pid: number, stop(): Promise<void>, start(): Promise<void> }>}
 */
async function startRedis() {
  const port = await freePort()
  let child = null
  let exited = null
  let output = ''

  const start = async () => {
    if (child && !exited) return
    exited = null
    output = ''
    const c = spawn('redis-server', [
      '--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no',
      '--protected-mode', 'yes', '--enable-debug-command', 'local',
    ], { stdio: ['ignore', 'pipe', 'pipe'] })
    child = c
    running.add(c)
    const keep = (d) => { output = (output + d).slice(-4000) }
    c.stdout.on('data', keep)
    c.stderr.on('data', keep)
    c.exit = new Promise((resolve) => c.on('exit', (code, signal) => {
      running.delete(c)
      if (c === child) exited = { code, signal }
      resolve()
    }))
    c.on('error', (err) => { running.delete(c); if (c === child) exited = { error: err.message } })
    const deadline = Date.now() + 10_000
    for (;;) {
      if (exited) throw new Error(`redis-server exited before answering: ${JSON.stringify(exited)}\n${output}`)
      if (await pings(port)) break
      if (Date.now() > deadline) {
        await stop()
        throw new Error(`redis-server did not answer PING on port ${port} within 10 s\n${output}`)
      }
      await new Promise((r) => setTimeout(r, 50))
    }
    api.pid = c.pid
  }

  const stop = async () => {
    const c = child
    if (!c || exited || !running.has(c)) return
    process.kill(c.pid, 'SIGTERM')
    const timer = setTimeout(() => { if (running.has(c)) process.kill(c.pid, 'SIGKILL') }, 5000)
    await c.exit
    clearTimeout(timer)
  }

  const api = { url: `redis://127.0.0.1:${port}`, port, pid: 0, stop, start }
  await start()
  return api
}

/**
 * One redis-server for a test file (when installed), and the fleet instances its tests start;
 * both stopped after the file. `server.redis` is null when redis-server is missing.
 */
function redisForFile(test) {
  const server = { redis: null, instances: [] }
  test.before(async () => {
    if (has('redis-server')) server.redis = await startRedis()
  })
  test.after(async () => {
    await Promise.all(server.instances.map((i) => i.stop()))
    if (server.redis) await server.redis.stop()
  })
  return server
}

/** Runs redis-cli with `args`; resolves with its output. */
function cli(args) {
  return new Promise((resolve, reject) => execFile('redis-cli', args, { timeout: 30_000 }, (err, out, errOut) => (err ? reject(new Error(`redis-cli ${args.join(' ')}: ${err.message}\n${out}${errOut}`)) : resolve(out))))
}

/**
 * A real Redis Cluster of three masters on 127.0.0.1 (no replicas), in a temporary directory:
 * three `redis-server --cluster-enabled yes` joined with `redis-cli --cluster create`.
 * Resolves once every node reports cluster_state:ok. stop() kills the servers by pid.
 * @returns {Promise<{ nodes: Array<{ host: string, port: number }>, stop(): Promise<void> }>}
 */
async function startRedisCluster() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bw-cluster-'))
  const children = []
  const nodes = []
  const stop = async () => {
    await Promise.all(children.map((c) => {
      if (!running.has(c)) return undefined
      process.kill(c.pid, 'SIGKILL')
      return c.exit
    }))
    fs.rmSync(dir, { recursive: true, force: true })
  }
  try {
    for (let i = 0; i < 3; i++) {
      const port = await freePort()
      const bus = await freePort()
      const c = spawn('redis-server', [
        '--bind', '127.0.0.1', '--port', String(port), '--cluster-enabled', 'yes', '--cluster-port', String(bus),
        '--cluster-config-file', path.join(dir, `nodes-${port}.conf`), '--dir', dir, '--save', '', '--appendonly', 'no',
      ], { stdio: 'ignore' })
      running.add(c)
      c.exit = new Promise((resolve) => c.on('exit', () => { running.delete(c); resolve() }))
      children.push(c)
      nodes.push({ host: '127.0.0.1', port })
    }
    for (const n of nodes) {
      const deadline = Date.now() + 10_000
      while (!(await pings(n.port))) {
        if (Date.now() > deadline) throw new Error(`cluster node ${n.port} did not answer PING`)
        await new Promise((r) => setTimeout(r, 50))
      }
    }
    await cli(['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'])
    const deadline = Date.now() + 20_000
    for (const n of nodes) {
      while (!/cluster_state:ok/.test(await cli(['-p', String(n.port), 'cluster', 'info']))) {
        if (Date.now() > deadline) throw new Error('the cluster did not reach cluster_state:ok within 20 s')
        await new Promise((r) => setTimeout(r, 100))
      }
    }
  } catch (e) {
    await stop()
    throw e
  }
  return { nodes, stop }
}

module.exports = { startRedis, requireRedis, redisForFile, startRedisCluster }
