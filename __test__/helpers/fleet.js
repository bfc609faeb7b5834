'use strict'
// Child processes that each hold one breaker on a shared store (__test__/fixtures/store-node.js):
// the "fleet" of the shared-state tests. Not a test file.
const { fork } = require('node:child_process')
const path = require('node:path')

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'store-node.js')

/**
 * Starts one instance; resolves when its breaker exists. `env` adds to the child's environment
 * (e.g. LD_PRELOAD of libfaketime for a host whose wall clock is off).
 * @returns {Promise<{ pid: number, run(m?): Promise<any>, runMany(m): Promise<any>, state(): Promise<any>, stop(): Promise<void> }>}
 */
function startInstance(cfg, { env } = {}) {
  const child = fork(FIXTURE, [JSON.stringify(cfg)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: env === undefined ? process.env : { ...process.env, ...env } })
  const waiting = new Map()
  let next = 0
  let exited = false
  const exit = new Promise((resolve) => child.on('exit', () => {
    exited = true
    for (const w of waiting.values()) w.reject(new Error('instance exited'))
    resolve()
  }))
  const ready = new Promise((resolve, reject) => {
    child.once('message', (m) => (m && m.ready ? resolve() : reject(new Error(`unexpected first message ${JSON.stringify(m)}`))))
    child.once('exit', (code) => reject(new Error(`instance exited with ${code} before it was ready`)))
  })
  child.on('message', (m) => {
    const w = m && waiting.get(m.id)
    if (w) {
      waiting.delete(m.id)
      w.resolve(m)
    }
  })
  const ask = (m) => new Promise((resolve, reject) => {
    const id = ++next
    waiting.set(id, { resolve, reject })
    child.send({ ...m, id })
  })
  const inst = {
    pid: child.pid,
    run: (m = {}) => ask({ cmd: 'run', ...m }),
    runMany: (m) => ask({ cmd: 'runMany', ...m }),
    state: () => ask({ cmd: 'state' }),
    open: () => ask({ cmd: 'open' }),
    close: () => ask({ cmd: 'close' }),
    async stop() {
      if (exited) return
      child.kill('SIGTERM')
      await exit
    },
  }
  return ready.then(() => inst)
}

/** Starts `n` instances with the same configuration. */
function startFleet(n, cfg) {
  return Promise.all(Array.from({ length: n }, () => startInstance(cfg)))
}

/** Polls the (async) `pred` until it is true; fails naming `what` after `ms`. */
async function until(pred, ms, what) {
  const end = Date.now() + ms
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

module.exports = { startInstance, startFleet, until }
