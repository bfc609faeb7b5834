'use strict'
// fileStore({ dir }): circuit state in one JSON file per circuit, shared by the processes of one
// host, and kept across restarts.
//
// - Loaded synchronously when a breaker is created (it is a local file), so a restarted process
//   starts in the saved state before its first call.
// - Writes are atomic: write a temporary file in the same directory, then rename it over the
//   old one; a reader sees the old file or the new one, never half of one.
// - Read-compare-write runs under an advisory lock (a `.lock` file created with O_EXCL, which
//   every platform and network file system honours), so two processes saving at once lose no
//   update: the newer `stateChangedAt` wins whatever the order. A lock left by a crashed
//   process is broken once it is older than STALE_LOCK_MS.
// - A corrupt or foreign file is reported (the breaker logs it, stats.store says so) and
//   treated as absent; the next save replaces it. It never crashes anything.
// - Fleet-wide probe permits live in `<name>.probes.json`, under the same lock.

const fs = require('node:fs')
const path = require('node:path')
const crypto = require('node:crypto')
const { show, storeTimings } = require('../options.js')

const STALE_LOCK_MS = 10_000
const LOCK_WAIT_MS = 2_000
const FORMAT = 'breakwater.snapshot.v1'

function corrupt(file, why) {
  return Object.assign(new Error(`${file} is not a breakwater snapshot (${why}); ignoring it`), { code: 'BREAKWATER_STORE_CORRUPT' })
}

/**
 * @param {{ dir: string, syncIntervalMs?: number, loadTimeoutMs?: number }} opts
 */
function fileStore(opts) {
  if (opts === null || typeof opts !== 'object') throw new TypeError(`breakwater: fileStore(options) needs { dir }, got ${show(opts)}`)
  const { dir } = opts
  if (typeof dir !== 'string' || dir.length === 0) throw new TypeError(`breakwater: fileStore option dir must be a directory path, got ${show(dir)}`)
  const { syncIntervalMs, loadTimeoutMs } = storeTimings(opts)
  fs.mkdirSync(dir, { recursive: true })
  const token = `${process.pid}-${crypto.randomBytes(6).toString('hex')}`
  const held = new Map() // name → count of probe permits this store instance holds

  // Names can hold any character: the file name is its encoding, readable for plain names.
  const fileOf = (name) => path.join(dir, encodeURIComponent(name).replace(/\./g, '%2E') + '.json')

  function read(file, name) {
    let text
    try {
      text = fs.readFileSync(file, 'utf8')
    } catch (e) {
      if (e.code === 'ENOENT') return null
      throw e
    }
    let v
    try {
      v = JSON.parse(text)
    } catch {
      throw corrupt(file, 'not JSON')
    }
    if (v === null || typeof v !== 'object' || v.format !== FORMAT) throw corrupt(file, 'no breakwater format marker')
    const s = v.snapshot
    if (s === null || typeof s !== 'object' || !['CLOSED', 'OPEN', 'HALF_OPEN'].includes(s.state) || typeof s.stateChangedAt !== 'number') throw corrupt(file, 'no valid state')
    if (name !== undefined && s.name !== undefined && s.name !== name) throw corrupt(file, `it belongs to circuit ${JSON.stringify(s.name)}`)
    return s
  }

  function write(file, value) {
    const tmp = `${file}.${token}.${crypto.randomBytes(4).toString('hex')}.tmp`
    try {
      fs.writeFileSync(tmp, JSON.stringify(value))
      fs.renameSync(tmp, file)
    } catch (e) {
      try {
        fs.unlinkSync(tmp)
      } catch {}
      throw e
    }
  }

  /** Runs `f` holding `<file>.lock`; waits (without blocking the event loop) for a holder. */
  async function locked(file, f) {
    const lock = `${file}.lock`
    const until = Date.now() + LOCK_WAIT_MS
    for (let wait = 2; ; wait = Math.min(wait * 2, 50)) {
      let fd
      try {
        fd = fs.openSync(lock, 'wx')
      } catch (e) {
        if (e.code !== 'EEXIST') throw e
        try {
          if (Date.now() - fs.statSync(lock).mtimeMs > STALE_LOCK_MS) fs.unlinkSync(lock) // its holder died
        } catch {}
        if (Date.now() > until) throw Object.assign(new Error(`${lock} is held by another process for more than ${LOCK_WAIT_MS} ms`), { code: 'BREAKWATER_STORE_TIMEOUT' })
        await new Promise((r) => setTimeout(r, wait))
        continue
      }
      try {
        fs.writeSync(fd, token)
        fs.closeSync(fd)
        return f()
      } finally {
        try {
          fs.unlinkSync(lock)
        } catch {}
      }
    }
  }

  const store = {
    kind: 'file',
    dir,
    syncIntervalMs,
    loadTimeoutMs,

    /** The saved snapshot of `name`, or null. Throws BREAKWATER_STORE_CORRUPT for a bad file. */
    loadSync(name) {
      return read(fileOf(name), name)
    },

    async load(name) {
      return read(fileOf(name), name)
    },

    /** Saves unless the file already holds a decision at least as new (last writer wins). */
    save(name, snapshot) {
      const file = fileOf(name)
      return locked(file, () => {
        let cur = null
        try {
          cur = read(file, name)
        } catch (e) {
          if (e.code !== 'BREAKWATER_STORE_CORRUPT') throw e // a corrupt file is replaced
        }
        if (cur !== null && cur.stateChangedAt >= snapshot.stateChangedAt) return false
        write(file, { format: FORMAT, snapshot })
        return true
      })
    },

    /** One of `max` permits, each expiring `ttlMs` after it was taken; none while OPEN. */
    tryAcquireProbe(name, { ttlMs, max }) {
      const file = fileOf(name)
      const pfile = file.replace(/\.json$/, '.probes.json')
      return locked(pfile, () => {
        const now = Date.now()
        let st = null
        try {
          st = read(file, name)
        } catch {}
        if (st !== null && st.state === 'OPEN' && (st.forced === true || (typeof st.nextAttemptAt === 'number' && st.nextAttemptAt > now))) return false
        const holders = readPermits(pfile).filter((h) => h.expiresAt > now)
        if (holders.length >= max) return false
        holders.push({ token, expiresAt: now + ttlMs })
        write(pfile, { format: FORMAT, holders })
        held.set(name, (held.get(name) || 0) + 1)
        return true
      })
    },

    releaseProbe(name) {
      const n = held.get(name) || 0
      if (n === 0) return undefined
      if (n === 1) held.delete(name)
      else held.set(name, n - 1)
      const pfile = fileOf(name).replace(/\.json$/, '.probes.json')
      return locked(pfile, () => {
        const holders = readPermits(pfile)
        const i = holders.findIndex((h) => h.token === token)
        if (i >= 0) holders.splice(i, 1)
        write(pfile, { format: FORMAT, holders })
      })
    },
  }
  return store
}

function readPermits(pfile) {
  try {
    const v = JSON.parse(fs.readFileSync(pfile, 'utf8'))
    return v && Array.isArray(v.holders) ? v.holders.filter((h) => h && typeof h.token === 'string' && typeof h.expiresAt === 'number') : []
  } catch {
    return [] // missing or corrupt: no permits are held
  }
}

module.exports = { fileStore }
