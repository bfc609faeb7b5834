'use strict'
// External tools the metrics tests use (promtool, moto_server, cfn-lint), and a local moto
// server. Not a test file. Under CI (process.env.CI set) a missing tool fails the test;
// elsewhere the test is skipped with a message saying what to install.

const { spawn, spawnSync } = require('node:child_process')
const net = require('node:net')

const INSTALL = {
  promtool: "apt-get install -y prometheus   (Debian/Ubuntu; promtool ships with it)",
  moto_server: "pip install 'moto[server]'",
  'cfn-lint': "pip install 'moto[server]'   (or pip install cfn-lint)",
  zip: 'apt-get install -y zip',
  unzip: 'apt-get install -y unzip',
  make: 'apt-get install -y make',
}

const PROBE = { moto_server: ['--help'], unzip: ['-v'] } // moto_server has no --version; unzip's is -v
const known = new Map()

function has(tool) {
  if (known.has(tool)) return known.get(tool)
  const r = spawnSync(tool, PROBE[tool] || ['--version'], { stdio: 'ignore', timeout: 30_000 })
  known.set(tool, !r.error && r.status === 0)
  return known.get(tool)
}

/**
 * True when `tool` is on PATH. Otherwise: under CI throws (the test fails); elsewhere marks
 * the test `t` skipped and returns false.
 */
function requireTool(t, tool) {
  if (has(tool)) return true
  return missing(t, `${tool} is not installed; install it with: ${INSTALL[tool] || tool}`)
}

/** A tool the test needs is missing: under CI throws (the test fails); elsewhere skips `t`. */
function missing(t, msg) {
  if (process.env.CI) throw new Error(`${msg} (required when CI is set)`)
  t.skip(msg)
  return false
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

/**
 * Starts `moto_server` on 127.0.0.1 and waits until it answers.
 * @returns {Promise<{ endpoint: string, pid: number, stop(): Promise<void> }>}
 */
async function startMoto() {
  const port = await freePort()
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000) })
  let exited = null
  const exit = new Promise((resolve) => child.on('exit', (code, signal) => { exited = { code, signal }; resolve() }))
  child.on('error', (err) => { exited = { error: err } })
  const endpoint = `http://127.0.0.1:${port}`
  const stop = async () => {
    if (exited) return
    process.kill(child.pid, 'SIGTERM')
    const timer = setTimeout(() => { if (!exited) process.kill(child.pid, 'SIGKILL') }, 5000)
    await exit
    clearTimeout(timer)
  }
  const deadline = Date.now() + 30_000
  for (;;) {
    if (exited) throw new Error(`moto_server exited before answering: ${JSON.stringify(exited)} ${stderr}`)
    try {
      const r = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1000) })
      await r.arrayBuffer()
      break
    } catch {}
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`moto_server did not answer on ${endpoint} within 30 s: ${stderr}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  return { endpoint, pid: child.pid, stop }
}

/**
 * A CloudWatchClient for a moto endpoint (fake credentials, us-east-1). Request compression
 * is off: the SDK gzips PutMetricData bodies above 10 KiB, and moto's server decompresses
 * such a body twice (BadGzipFile, HTTP 500); real CloudWatch accepts them.
 */
function cloudWatchClient(endpoint) {
  const { CloudWatchClient } = require('@aws-sdk/client-cloudwatch')
  return new CloudWatchClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    maxAttempts: 1,
    disableRequestCompression: true,
  })
}

module.exports = { requireTool, missing, freePort, startMoto, cloudWatchClient, has }
