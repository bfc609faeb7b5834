'use strict'
// A throwaway PostgreSQL server for the store-example tests. Not a test file.
// initdb into a fresh temp dir, start `postgres` on 127.0.0.1 (trust auth, TCP only) on a
// free port, stop it by its pid. Under CI (process.env.CI set) missing binaries fail the
// test; elsewhere the test is skipped with a message saying what to install.

const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { missing, freePort } = require('./tools.js')

const INSTALL = 'apt-get install -y postgresql   (Debian/Ubuntu; initdb and postgres live in /usr/lib/postgresql/<version>/bin)'

let found // undefined: not looked yet; null: not found; else { initdb, postgres }

function runs(file) {
  const r = spawnSync(file, ['--version'], { stdio: 'ignore', timeout: 30_000 })
  return !r.error && r.status === 0
}

/** The initdb and postgres binaries: from PATH, else the newest /usr/lib/postgresql/<v>/bin. */
function binaries() {
  if (found !== undefined) return found
  found = null
  if (runs('initdb') && runs('postgres')) {
    found = { initdb: 'initdb', postgres: 'postgres' }
    return found
  }
  let versions = []
  try {
    versions = fs.readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a) || (a < b ? 1 : -1))
  } catch {}
  for (const v of versions) {
    const bin = path.join('/usr/lib/postgresql', v, 'bin')
    const initdb = path.join(bin, 'initdb')
    const postgres = path.join(bin, 'postgres')
    if (runs(initdb) && runs(postgres)) {
      found = { initdb, postgres }
      break
    }
  }
  return found
}

function hasPostgres() {
  return binaries() !== null
}

/**
 * True when initdb and postgres are available. Otherwise: under CI throws (the test fails);
 * elsewhere marks the test `t` skipped and returns false.
 */
function requirePostgres(t) {
  if (hasPostgres()) return true
  const msg = `PostgreSQL server binaries (initdb, postgres) are not installed; install them with: ${INSTALL}`
  return missing(t, msg)
}


/** uid and gid of the `postgres` OS user (postgres refuses to run as root). */
function postgresUser() {
  const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' })
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' })
  if (uid.status !== 0 || gid.status !== 0) {
    throw new Error('running as root, and there is no `postgres` OS user to run PostgreSQL as (postgres refuses to run as root)')
  }
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) }
}

function chownTree(p, uid, gid) {
  fs.chownSync(p, uid, gid)
  for (const e of fs.readdirSync(p, { withFileTypes: true })) {
    const c = path.join(p, e.name)
    if (e.isDirectory()) chownTree(c, uid, gid)
    else fs.chownSync(c, uid, gid)
  }
}

/** One attempt: spawns postgres on `port`, resolves when it accepts connections. */
function launch(bin, dataDir, sockDir, port, user, env) {
  return new Promise((resolve, reject) => {
    const args = ['-D', dataDir, '-h', '127.0.0.1', '-p', String(port), '-k', sockDir,
      '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
      '-c', 'max_connections=200', '-c', 'logging_collector=off']
    const child = spawn(bin, args, { cwd: dataDir, env, stdio: ['ignore', 'ignore', 'pipe'], ...user })
    let log = ''
    let exited = null
    let ready = false
    const exit = new Promise((r) => child.on('exit', (code, signal) => { exited = { code, signal }; r() }))
    const fail = (err) => {
      if (ready) return
      ready = true
      clearTimeout(timer)
      reject(Object.assign(err, { log, addrInUse: /could not bind|Address already in use/i.test(log) }))
    }
    const timer = setTimeout(() => {
      try { process.kill(child.pid, 'SIGQUIT') } catch {}
      fail(new Error(`postgres did not accept connections within 30 s:\n${log}`))
    }, 30_000)
    child.on('error', (err) => fail(err))
    child.on('exit', () => fail(new Error(`postgres exited before accepting connections: ${JSON.stringify(exited)}\n${log}`)))
    child.stderr.on('data', (d) => {
      log = (log + d).slice(-8000)
      if (!ready && /database system is ready to accept connections/.test(log)) {
        ready = true
        clearTimeout(timer)
        resolve({ child, exit, getExited: () => exited, getLog: () => log })
      }
    })
  })
}

/**
 * initdb into a fresh temp dir and start postgres on 127.0.0.1 on a free port.
 * @returns {Promise<{ connectionString: string, config: { host: string, port: number, user: string, database: string },
 *   pid: number, dataDir: string, stop(): Promise<void> }>}
 */
async function startPostgres() {
  const bin = binaries()
  if (!bin) throw new Error(`PostgreSQL is not installed; ${INSTALL}`)
  const root = process.getuid && process.getuid() === 0
  const user = root ? postgresUser() : {}

  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'breakwater-pg-'))
  const dataDir = path.join(base, 'data')
  const sockDir = path.join(base, 'sock')
  fs.mkdirSync(sockDir, { mode: 0o700 })
  if (root) chownTree(base, user.uid, user.gid)
  const cleanup = () => { try { fs.rmSync(base, { recursive: true, force: true }) } catch {} }

  const env = { PATH: process.env.PATH, LANG: 'C', LC_ALL: 'C', TZ: 'UTC', HOME: base }
  const init = spawnSync(bin.initdb, ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync',
    '--encoding=UTF8', '--locale=C'], { cwd: base, env, encoding: 'utf8', timeout: 120_000, ...user })
  if (init.error || init.status !== 0) {
    cleanup()
    throw new Error(`initdb failed (${init.error ? init.error.message : `exit ${init.status}`}):\n${init.stdout}\n${init.stderr}`)
  }
  // TCP on 127.0.0.1 only, trust; no unix-socket or other-host access.
  fs.writeFileSync(path.join(dataDir, 'pg_hba.conf'), 'host all all 127.0.0.1/32 trust\n')
  if (root) fs.chownSync(path.join(dataDir, 'pg_hba.conf'), user.uid, user.gid)

  let server
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    try {
      server = await launch(bin.postgres, dataDir, sockDir, port, user, env)
      server.port = port
      break
    } catch (err) {
      if (err.addrInUse && attempt < 5) continue // the free port was taken in between
      cleanup()
      throw err
    }
  }

  const { child, exit, getExited, getLog } = server
  const pid = child.pid
  child.stderr.resume() // keep draining the log
  const onExit = () => { if (!getExited()) { try { process.kill(pid, 'SIGQUIT') } catch {} } }
  process.on('exit', onExit)

  let stopping = null
  const stop = () => {
    if (stopping) return stopping
    stopping = (async () => {
      process.removeListener('exit', onExit)
      if (!getExited()) {
        try { process.kill(pid, 'SIGINT') } catch {} // fast shutdown
        const timer = setTimeout(() => { if (!getExited()) { try { process.kill(pid, 'SIGKILL') } catch {} } }, 15_000)
        await exit
        clearTimeout(timer)
      }
      cleanup()
    })()
    return stopping
  }

  const port = server.port
  return {
    connectionString: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    config: { host: '127.0.0.1', port, user: 'postgres', database: 'postgres' },
    pid,
    dataDir,
    log: getLog,
    stop,
  }
}

module.exports = { startPostgres, requirePostgres, hasPostgres }
