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
//   update. Each saved decision gets the next `version` (a counter in the file, under the lock);
//   a save based on an older version than the file holds is refused (see link.js). A lock left
//   by a crashed process is broken once it is older than STALE_LOCK_MS (host monotonic clock).
// - Only regular files of at most MAX_FILE bytes are read, opened non-blocking and checked with
//   fstat before a bounded read: a FIFO, a device (a symlink to /dev/zero) or a huge file at a
//   circuit's path is refused, never read, and never blocks the process.
// - Every valid name has a file: the escaped name when it is short enough (and representable),
//   else a SHA-256 digest of it. The name is stored in the file and checked on load.
// - A corrupt or foreign file is reported (the breaker logs it, stats.store says so) and
//   treated as absent; the next save replaces it. It never crashes anything.
// - Fleet-wide probe permits live in `<name>.probes.json`, under the same lock.

const fs = require('node:fs')
const path = require('node:path')
const crypto = require('node:crypto')
const { show, storeTimings } = require('../options.js')

const STALE_LOCK_MS = 10_000
const MAX_FILE = 64 * 1024
// A file name is at most 255 bytes; the longest suffix added to a base is
// `.probes.json.<pid>-<12 hex>.<8 hex>.tmp` (under 60 bytes).
const MAX_BASE = 180
const { O_RDONLY, O_NONBLOCK } = fs.constants
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
  const held = new Map() // name -> count of probe permits this store instance holds

  const fileOf = (name) => path.join(dir, baseOf(name) + '.json')

  function read(file, name) {
    const text = readBounded(file)
    if (text === null) return null
    let v
    try {
      v = JSON.parse(text)
    } catch {
      throw corrupt(file, 'not JSON')
    }
    if (v === null || typeof v !== 'object' || v.format !== FORMAT) throw corrupt(file, 'no breakwater format marker')
    const s = v.snapshot
    if (s === null || typeof s !== 'object' || !['CLOSED', 'OPEN', 'HALF_OPEN'].includes(s.state) || typeof s.stateChangedAt !== 'number') throw corrupt(file, 'no valid state')
    if (v.name !== undefined && v.name !== name) throw corrupt(file, 'it belongs to another circuit')
    if (s.name !== undefined && s.name !== name) throw corrupt(file, 'it belongs to another circuit')
    if (v.version !== undefined) {
      if (!Number.isSafeInteger(v.version) || v.version < 1) throw corrupt(file, 'no valid version')
      return { ...s, version: v.version }
    }
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
    const until = hostNow() + LOCK_WAIT_MS
    for (let wait = 2; ; wait = Math.min(wait * 2, 50)) {
      let fd
      try {
        fd = fs.openSync(lock, 'wx')
      } catch (e) {
        if (e.code !== 'EEXIST') throw e
        if (lockIsStale(lock)) {
          try {
            fs.unlinkSync(lock) // its holder died
          } catch {}
        }
        if (hostNow() > until) throw Object.assign(new Error(`${lock} is held by another process for more than ${LOCK_WAIT_MS} ms`), { code: 'BREAKWATER_STORE_TIMEOUT' })
        await new Promise((r) => setTimeout(r, wait))
        continue
      }
      try {
        fs.writeSync(fd, `${token} ${hostNow()}`)
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

    /**
     * Saves a decision based on `expectedVersion` unless the file holds a newer one (an
     * operator's, `force`, always saves). Resolves with { saved, version }.
     */
    save(name, snapshot, { expectedVersion = 0, force = false } = {}) {
      const file = fileOf(name)
      return locked(file, () => {
        let cur = null
        try {
          cur = read(file, name)
        } catch (e) {
          if (e.code !== 'BREAKWATER_STORE_CORRUPT') throw e // a corrupt file is replaced
        }
        const at = (cur !== null && cur.version) || 0
        if (!force && at > expectedVersion) return { saved: false, version: at }
        const version = Math.max(at, expectedVersion) + 1
        write(file, { format: FORMAT, name, version, snapshot })
        return { saved: true, version }
      })
    },

    /**
     * One of `max` permits, each expiring `ttlMs` after it was taken; none while the file holds
     * a forced OPEN or an OPEN newer than the decision the asker's HALF_OPEN follows (`version`).
     */
    tryAcquireProbe(name, { ttlMs, max, version = 0 }) {
      const file = fileOf(name)
      const pfile = file.replace(/\.json$/, '.probes.json')
      return locked(pfile, () => {
        const now = hostNow()
        let st = null
        try {
          st = read(file, name)
        } catch {}
        if (st !== null && st.state === 'OPEN' && (st.forced === true || (st.version || 0) > version)) return false
        // A permit further away than ttlMs was taken before a reboot (the clock restarted).
        const holders = readPermits(pfile).filter((h) => h.expiresAt > now && h.expiresAt <= now + ttlMs)
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

/**
 * The file name (without .json) of circuit `name`: its escaped form, readable for plain names,
 * or `#<sha256>` when that is too long or the name cannot be escaped (a lone surrogate).
 */
function baseOf(name) {
  let base = null
  try {
    base = encodeURIComponent(name).replace(/\./g, '%2E')
  } catch {} // URIError: a lone surrogate
  if (base === null || base.length > MAX_BASE) base = `%23${crypto.createHash('sha256').update(name, 'utf16le').digest('hex')}`
  return base
}

/**
 * The text of `file`, or null when there is none. Refuses (BREAKWATER_STORE_CORRUPT) anything
 * but a regular file of at most MAX_FILE bytes, without reading it: opened non-blocking (a FIFO
 * opens at once) and checked with fstat first; then at most MAX_FILE + 1 bytes are read.
 */
function readBounded(file) {
  let fd
  try {
    fd = fs.openSync(file, O_RDONLY | O_NONBLOCK)
  } catch (e) {
    if (e.code === 'ENOENT') return null
    throw e
  }
  try {
    const st = fs.fstatSync(fd)
    if (!st.isFile()) throw corrupt(file, 'not a regular file')
    if (st.size > MAX_FILE) throw corrupt(file, `${st.size} bytes, more than ${MAX_FILE}`)
    const buf = Buffer.allocUnsafe(MAX_FILE + 1)
    let n = 0
    for (let got; n <= MAX_FILE && (got = fs.readSync(fd, buf, n, MAX_FILE + 1 - n, null)) > 0;) n += got
    if (n > MAX_FILE) throw corrupt(file, `more than ${MAX_FILE} bytes`)
    return buf.toString('utf8', 0, n)
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * Milliseconds on the host's monotonic clock (CLOCK_MONOTONIC: one clock for every process of
 * the host, whatever their wall clocks say -- a process under a wrong TZ or libfaketime, an NTP
 * step). Permits and locks expire by it, never by comparing two processes' wall clocks.
 */
function hostNow() {
  return Number(process.hrtime.bigint() / 1_000_000n)
}

/** A lock whose holder took it more than STALE_LOCK_MS ago (by hostNow()), or unreadable and old. */
function lockIsStale(lock) {
  try {
    const [, at] = String(readBounded(lock)).split(' ')
    if (at !== undefined && /^\d+$/.test(at)) {
      const age = hostNow() - Number(at)
      return age > STALE_LOCK_MS || age < -STALE_LOCK_MS // taken before a reboot
    }
    return Date.now() - fs.statSync(lock).mtimeMs > STALE_LOCK_MS // written a moment ago, or by an older version
  } catch {
    return false
  }
}

function readPermits(pfile) {
  try {
    const v = JSON.parse(readBounded(pfile))
    return v && Array.isArray(v.holders) ? v.holders.filter((h) => h && typeof h.token === 'string' && typeof h.expiresAt === 'number') : []
  } catch {
    return [] // missing or corrupt: no permits are held
  }
}

module.exports = { fileStore }
