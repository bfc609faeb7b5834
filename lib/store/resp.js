'use strict'
// A small Redis client (RESP2 over node:net / node:tls) for redisStore. It runs in the
// background of a breaker, so it is built to fail fast rather than to wait: while Redis is
// unreachable, commands reject at once instead of queueing, every reply has a deadline, and
// nothing it owns (sockets, timers) keeps a process alive on its own. No dependencies: a
// circuit breaker should not pull a Redis driver into every install.

const net = require('node:net')
const tls = require('node:tls')
const crypto = require('node:crypto')

const DOWN = 'BREAKWATER_STORE_DOWN'
const TIMEOUT = 'BREAKWATER_STORE_TIMEOUT'
const BACKOFF_START_MS = 100
const BACKOFF_CAP_MS = 1000 // back within a sync or so of Redis being reachable again
const URL_FORM = 'redis://[user[:password]@]host[:port][/db] or rediss://\u2026 (TLS)'

/** An error reply from Redis (`-ERR ...`, `-NOSCRIPT ...`); message is Redis's own. */
class RedisReplyError extends Error {}
Object.defineProperty(RedisReplyError.prototype, 'name', { value: 'RedisReplyError', writable: true, configurable: true })

const storeError = (code, message) => Object.assign(new Error(message), { code })

/**
 * @param {string} url redis://[user[:password]@]host[:port][/db] or rediss://...
 * @returns {{ tls: boolean, host: string, port: number, username: string|null, password: string|null, db: number }}
 */
function parseRedisUrl(url) {
  // A malformed URL's error never shows the URL or any part of it: a password holding a '/',
  // '#' or '?' (unescaped) parses as a path, fragment or query, so any part may be a secret.
  const bad = (why) => new TypeError(`breakwater: redis url must be ${URL_FORM}; the ${
    typeof url === 'string' ? 'url given (not shown: it may hold a password)' : `value given (${url === null ? 'null' : `a ${typeof url}`})`} ${why || 'is not one'}`)
  if (typeof url !== 'string') throw bad()
  let u
  try { u = new URL(url) } catch { throw bad('is not a URL') }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw bad('does not start with redis:// or rediss://')
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1') // IPv6 literals come bracketed
  if (!host) throw bad('has no host')
  if (u.search || u.hash) throw bad("has a query string or fragment (a password with '?' or '#' must be percent-encoded)")
  const path = u.pathname.replace(/^\//, '')
  if (path !== '' && !/^\d{1,9}$/.test(path)) throw bad("has a path that is not a database number (a password with '/' must be percent-encoded)")
  let username = null
  let password = null
  try {
    if (u.username) username = decodeURIComponent(u.username)
    if (u.password) password = decodeURIComponent(u.password)
  } catch { throw bad('has bad percent-encoding in the user or password') }
  // AUTH needs a password; a lone name is more likely a password written in the wrong place.
  if (username !== null && password === null) throw bad('has a user name without a password')
  const port = u.port ? Number(u.port) : 6379
  if (port === 0) throw bad('has port 0')
  return { tls: u.protocol === 'rediss:', host, port, username, password, db: path ? Number(path) : 0 }
}

/** One command as RESP: an array of bulk strings. */
function encode(args, out) {
  if (!Array.isArray(args) || args.length === 0) throw new TypeError('breakwater: a redis command must be a non-empty array of strings, numbers or Buffers')
  out.push(Buffer.from(`*${args.length}\r\n`))
  for (const a of args) {
    if (Buffer.isBuffer(a)) {
      out.push(Buffer.from(`$${a.length}\r\n`), a, Buffer.from('\r\n'))
    } else if (typeof a === 'string' || (typeof a === 'number' && Number.isFinite(a))) {
      const s = String(a)
      out.push(Buffer.from(`$${Buffer.byteLength(s)}\r\n${s}\r\n`))
    } else {
      throw new TypeError(`breakwater: a redis command argument must be a string, a finite number or a Buffer, got ${typeof a}`)
    }
  }
}

const INCOMPLETE = Symbol('incomplete')
const OPENED = Symbol('opened')
const MAX_LINE = 64 * 1024 // a simple string, error or length line
const MAX_DEPTH = 8

/**
 * Incremental, bounded RESP2 reader.
 * - Chunks are collected until the item under way can be complete (`need` bytes), so a large
 *   bulk string arriving in many chunks is joined once, not re-parsed on every chunk.
 * - Arrays are read element by element with a stack of partly filled arrays: a slowly sent
 *   array is never re-parsed from its start.
 * - Sizes are bounded (a bulk string of at most `maxBulk` bytes, arrays of at most `maxArray`
 *   elements, `MAX_DEPTH` levels, lines of `MAX_LINE`): a server streaming an endless value is a
 *   protocol error (the connection is dropped), not unbounded memory.
 */
class Parser {
  constructor(onReply, { maxBulk = 4 * 1024 * 1024, maxArray = 1024 } = {}) {
    this.onReply = onReply
    this.maxBulk = maxBulk
    this.maxArray = maxArray
    this.chunks = []
    this.length = 0
    this.need = 0
    this.stack = [] // { arr, i }: arrays being filled, innermost last
  }

  push(chunk) {
    this.chunks.push(chunk)
    this.length += chunk.length
    if (this.length < this.need) return
    const buf = this.chunks.length === 1 ? chunk : Buffer.concat(this.chunks, this.length)
    this.buf = buf
    this.pos = 0
    this.need = 0
    for (;;) {
      const value = this.item()
      if (value === INCOMPLETE) break // item() has set `need` and left pos at the item's start
      if (value !== OPENED) this.emit(value)
    }
    const pos = this.pos
    this.need -= pos
    this.chunks = pos < buf.length ? [buf.subarray(pos)] : []
    this.length = buf.length - pos
    this.buf = null
  }

  /** A complete value: into the array being filled, or out as a reply. */
  emit(v) {
    for (;;) {
      const top = this.stack[this.stack.length - 1]
      if (top === undefined) return this.onReply(v)
      top.arr[top.i++] = v
      if (top.i < top.arr.length) return
      this.stack.pop()
      v = top.arr
    }
  }

  /** One item at this.pos: a value, OPENED (an array header), or INCOMPLETE (pos unchanged). */
  item() {
    const buf = this.buf
    const start = this.pos
    const eol = buf.indexOf('\r\n', start)
    if (eol < 0) {
      if (buf.length - start > MAX_LINE) throw new Error(`a RESP line longer than ${MAX_LINE} bytes`)
      this.need = buf.length + 1
      return INCOMPLETE
    }
    if (eol - start > MAX_LINE) throw new Error(`a RESP line longer than ${MAX_LINE} bytes`)
    const type = buf[start]
    const line = buf.toString('utf8', start + 1, eol)
    switch (type) {
      case 0x2b: this.pos = eol + 2; return line // '+'
      case 0x2d: this.pos = eol + 2; return new RedisReplyError(line) // '-'
      case 0x3a: this.pos = eol + 2; return Number(line) // ':'
      case 0x24: { // '$': the length first, then exactly that many bytes (which may hold CRLF)
        const len = length(line, this.maxBulk, 'bulk string', 'bytes')
        if (len < 0) { this.pos = eol + 2; return null }
        const end = eol + 2 + len
        if (end + 2 > buf.length) {
          this.need = end + 2
          return INCOMPLETE
        }
        this.pos = end + 2
        return buf.toString('utf8', end - len, end)
      }
      case 0x2a: { // '*'
        const n = length(line, this.maxArray, 'array', 'elements')
        this.pos = eol + 2
        if (n < 0) return null
        if (n === 0) return []
        if (this.stack.length >= MAX_DEPTH) throw new Error(`RESP arrays nested deeper than ${MAX_DEPTH}`)
        this.stack.push({ arr: new Array(n), i: 0 })
        return OPENED
      }
      default: throw new Error(`unexpected RESP type byte 0x${type.toString(16)}`)
    }
  }
}

/** A RESP length: an integer from -1 to `max`, else a protocol error. */
function length(line, max, what, unit) {
  const n = Number(line)
  if (!Number.isInteger(n) || n < -1) throw new Error(`a RESP ${what} with a bad length`)
  if (n > max) throw new Error(`a RESP ${what} of ${n} ${unit} (at most ${max})`)
  return n
}

/**
 * One connection with its own reconnect loop: the command connection, or the subscriber
 * connection (in subscribe mode a connection can run nothing but (UN)SUBSCRIBE).
 * States: idle (not started) -> connecting -> ready -> down (reconnect timer set) -> connecting ...;
 * closed is final.
 */
class Link {
  constructor(client, subscriber) {
    this.client = client
    this.subscriber = subscriber
    this.state = 'idle'
    this.socket = null
    this.pending = [] // sent, awaiting replies, in order: { n, replies, resolve, reject, timer }
    this.queued = [] // issued while connecting, written once ready: { buf, entry }
    this.attempt = 0
    this.timer = null
    this.ok = null // outcome of the last connect: null (none yet), true, false
    this.refd = false
  }

  get where() { return `${this.client._url.host}:${this.client._url.port}` }

  connect() {
    clearTimeout(this.timer)
    this.timer = null
    this.state = 'connecting'
    const { tls: secure, host, port, username, password, db } = this.client._url
    const socket = secure
      ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host })
      : net.connect({ host, port })
    this.socket = socket
    this.refd = true // a new socket starts ref'd; syncRef corrects it
    this.syncRef()
    socket.setNoDelay(true)
    socket.setKeepAlive(true, 30_000) // a subscriber connection may be silent for hours
    const parser = new Parser((reply) => this.onReply(socket, reply), this.subscriber ? { maxBulk: this.client._maxMessage * 4, maxArray: 8 } : undefined)
    socket.on('data', (d) => {
      if (socket !== this.socket) return
      try { parser.push(d) } catch (e) { this.fail(socket, `redis protocol error from ${this.where}: ${e.message}`) }
    })
    socket.on('error', (e) => this.fail(socket, e.message))
    socket.on('end', () => this.fail(socket, `connection to ${this.where} closed by the server`))
    socket.on('close', () => this.fail(socket, `connection to ${this.where} closed`))
    const ms = this.client._connectTimeoutMs // covers TCP, TLS, AUTH and SELECT
    this.connectTimer = setTimeout(() => this.fail(socket, `connect to ${this.where} timed out after ${ms} ms`), ms).unref()
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      if (socket !== this.socket) return
      // AUTH and SELECT go first, in one write; the connection counts as up once they succeed.
      // The subscriber selects its database too (channels ignore it, but a server with fewer
      // databases refuses it there as on the command connection, and both say so alike).
      const hello = []
      if (password !== null) hello.push(username !== null ? ['AUTH', username, password] : ['AUTH', password])
      if (db !== 0) hello.push(['SELECT', db])
      if (hello.length === 0) return this.ready(socket)
      const out = []
      for (const c of hello) encode(c, out)
      const resolve = (replies) => {
        const i = replies.findIndex((r) => r instanceof RedisReplyError)
        if (i < 0) this.ready(socket)
        else this.fail(socket, `${hello[i][0]} failed: ${replies[i].message}`)
      }
      this.pending.push({ n: hello.length, internal: true, replies: [], timer: null, resolve, reject() {} })
      socket.write(Buffer.concat(out))
    })
  }

  ready(socket) {
    clearTimeout(this.connectTimer)
    this.state = 'ready'
    this.attempt = 0
    this.ok = true
    if (this.subscriber) {
      const channels = [...this.client._channels.keys()]
      if (channels.length) this.write(['SUBSCRIBE', ...channels])
    }
    const queued = this.queued
    this.queued = []
    if (queued.length) {
      socket.write(queued.length === 1 ? queued[0].buf : Buffer.concat(queued.map((q) => q.buf)))
      for (const q of queued) this.track(socket, q.entry)
    }
    this.syncRef()
    this.client._status(null)
  }

  /** Sends an encoded request expecting `n` replies; resolves with the array of replies. */
  send(buf, n) {
    return new Promise((resolve, reject) => {
      const entry = { n, replies: [], resolve, reject, timer: null }
      if (this.state === 'ready') {
        this.socket.write(buf)
        this.track(this.socket, entry)
      } else if (this.state === 'connecting' || this.state === 'idle') {
        // Waits for the connect under way, which connectTimeoutMs bounds.
        this.queued.push({ buf, entry })
        if (this.state === 'idle') this.connect()
      } else {
        return reject(this.client._downError())
      }
      this.syncRef()
    })
  }

  track(socket, entry) {
    const ms = this.client._commandTimeoutMs
    // Replies come in order: one that is late leaves no way to match later ones, so the
    // connection goes, with everything pending on it.
    entry.timer = setTimeout(() => this.fail(socket, `redis command timed out after ${ms} ms`, TIMEOUT), ms).unref()
    this.pending.push(entry)
  }

  /** Fire-and-forget write on the subscriber connection ((UN)SUBSCRIBE confirm by push). */
  write(args) {
    const out = []
    encode(args, out)
    this.socket.write(Buffer.concat(out))
  }

  onReply(socket, reply) {
    if (socket !== this.socket) return
    const head = this.pending[0]
    if (head === undefined) {
      if (this.subscriber) return this.onPush(socket, reply)
      return this.fail(socket, `unexpected reply from ${this.where}`)
    }
    head.replies.push(reply)
    if (head.replies.length < head.n) return
    this.pending.shift()
    clearTimeout(head.timer)
    this.syncRef()
    head.resolve(head.replies)
  }

  onPush(socket, reply) {
    if (reply instanceof RedisReplyError) return this.fail(socket, `SUBSCRIBE failed: ${reply.message}`)
    if (Array.isArray(reply) && reply[0] === 'message') this.client._deliver(reply[1], reply[2])
    // subscribe / unsubscribe confirmations carry nothing we need
  }

  /** Drops the connection (if `socket` is still the current one) and schedules a reconnect. */
  fail(socket, message, code = DOWN) {
    if (socket !== this.socket) return // stale: that socket was dropped already
    this.drop()
    this.reject(code, message)
    this.ok = false
    this.state = 'down'
    this.schedule()
    this.client._status(message)
  }

  // Exponential backoff with full jitter: a fleet that lost Redis together does not come back
  // in lockstep.
  schedule() {
    const delay = Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_START_MS * 2 ** this.attempt)
    this.attempt = Math.min(this.attempt + 1, 30)
    this.timer = setTimeout(() => this.connect(), delay).unref()
  }

  drop() {
    const socket = this.socket
    this.socket = null // events from it are stale from here on
    clearTimeout(this.connectTimer)
    if (socket) socket.destroy()
  }

  reject(code, message) {
    const entries = this.pending.concat(this.queued.map((q) => q.entry))
    this.pending = []
    this.queued = []
    for (const e of entries) {
      clearTimeout(e.timer)
      e.reject(storeError(code, message))
    }
  }

  /** Back to idle (the subscriber connection, once nothing is subscribed) or closed. */
  stop(final) {
    clearTimeout(this.timer)
    this.timer = null
    this.drop()
    this.state = final ? 'closed' : 'idle'
    this.ok = null
    this.reject(DOWN, 'redis client closed')
  }

  // A socket holds the process open only while a caller awaits a reply on it (at most
  // connectTimeoutMs + commandTimeoutMs); otherwise it must not delay exit.
  syncRef() {
    const waiting = this.pending.length - (this.pending[0]?.internal ? 1 : 0) + this.queued.length
    const want = !this.subscriber && waiting > 0
    if (this.socket && want !== this.refd) {
      if (want) this.socket.ref()
      else this.socket.unref()
      this.refd = want
    }
  }
}

class RedisClient {
  /**
   * @param {{ url: string, connectTimeoutMs?: number, commandTimeoutMs?: number,
   *   onStatus?: (healthy: boolean, errorMessage: string|null) => void }} options
   */
  constructor({ url, connectTimeoutMs = 1000, commandTimeoutMs = 1000, onStatus, maxMessage = 16 * 1024 } = {}) {
    this._url = parseRedisUrl(url)
    for (const [k, v] of [['connectTimeoutMs', connectTimeoutMs], ['commandTimeoutMs', commandTimeoutMs]]) {
      if (typeof v !== 'number' || !(v > 0) || v > 2 ** 31 - 1) throw new TypeError(`breakwater: redis ${k} must be a positive number of ms, got ${v}`)
    }
    if (onStatus !== undefined && typeof onStatus !== 'function') throw new TypeError(`breakwater: redis onStatus must be a function, got ${typeof onStatus}`)
    this._connectTimeoutMs = connectTimeoutMs
    this._commandTimeoutMs = commandTimeoutMs
    this._onStatus = onStatus
    this._maxMessage = maxMessage // the subscriber connection takes messages of at most 4x this
    this._cmd = new Link(this, false)
    this._sub = new Link(this, true)
    this._channels = new Map() // channel -> Set of handlers
    this._reported = null // last health passed to onStatus; null so the first outcome is reported
    this._closed = false
    /** The last connection error seen (kept after recovery), or null. */
    this.lastError = null
  }

  /** Connected, and no connection in use has failed since. False before the first connect. */
  get healthy() {
    const links = [this._cmd, this._sub]
    return links.some((l) => l.ok === true) && !links.some((l) => l.ok === false)
  }

  _status(message) {
    if (message) this.lastError = message
    const healthy = this.healthy
    if (healthy === this._reported || this._closed) return
    this._reported = healthy
    if (this._onStatus) {
      try { this._onStatus(healthy, healthy ? null : this.lastError) } catch {} // the client must outlive a bad callback
    }
  }

  _downError() {
    return storeError(DOWN, this._closed ? 'redis client closed' : `redis at ${this._cmd.where} is unavailable: ${this.lastError}`)
  }

  /** @param {Array<string|number|Buffer>} args @returns {Promise<any>} */
  async command(args) {
    const out = []
    encode(args, out)
    const [reply] = await this._cmd.send(out.length === 1 ? out[0] : Buffer.concat(out), 1)
    if (reply instanceof RedisReplyError) throw reply
    return reply
  }

  /**
   * Sends all commands in one write. Resolves with one element per command: its reply, or a
   * RedisReplyError; rejects only when the connection fails or times out.
   * @param {Array<Array<string|number|Buffer>>} commands
   */
  async pipeline(commands) {
    if (!Array.isArray(commands)) throw new TypeError('breakwater: a redis pipeline must be an array of commands')
    if (commands.length === 0) return []
    const out = []
    for (const c of commands) encode(c, out)
    return this._cmd.send(Buffer.concat(out), commands.length)
  }

  /** A Lua script run by EVALSHA, falling back to EVAL when Redis does not have it cached. */
  script(lua) {
    if (typeof lua !== 'string') throw new TypeError('breakwater: a redis script must be a string of Lua')
    const sha = crypto.createHash('sha1').update(lua).digest('hex')
    return {
      sha,
      run: async (keys = [], args = []) => {
        try {
          return await this.command(['EVALSHA', sha, keys.length, ...keys, ...args])
        } catch (e) {
          // NOSCRIPT: first use, or Redis restarted / SCRIPT FLUSH. EVAL caches it again.
          if (!(e instanceof RedisReplyError) || !e.message.startsWith('NOSCRIPT')) throw e
          return this.command(['EVAL', lua, keys.length, ...keys, ...args])
        }
      },
    }
  }

  /**
   * Subscribes on a dedicated connection, resubscribed after every reconnect.
   * @param {string} channel @param {(message: string) => void} onMessage @returns {() => void} unsubscribe
   */
  subscribe(channel, onMessage) {
    if (typeof channel !== 'string' || channel === '') throw new TypeError('breakwater: a redis channel must be a non-empty string')
    if (typeof onMessage !== 'function') throw new TypeError('breakwater: onMessage must be a function')
    if (this._closed) throw storeError(DOWN, 'redis client closed')
    const handler = (m) => onMessage(m) // a fresh identity: the same function may subscribe twice
    let set = this._channels.get(channel)
    if (!set) {
      set = new Set()
      this._channels.set(channel, set)
      if (this._sub.state === 'ready') this._sub.write(['SUBSCRIBE', channel])
    }
    set.add(handler)
    if (this._sub.state === 'idle') this._sub.connect()
    let done = false
    return () => {
      if (done || this._closed) return
      done = true
      set.delete(handler)
      if (set.size > 0 || this._channels.get(channel) !== set) return
      this._channels.delete(channel)
      if (this._channels.size === 0) {
        this._sub.stop(false) // nothing left to listen to: no connection, no reconnect loop
        this._status(null)
      } else if (this._sub.state === 'ready') {
        this._sub.write(['UNSUBSCRIBE', channel])
      }
    }
  }

  _deliver(channel, message) {
    const set = this._channels.get(channel)
    if (!set) return
    for (const h of [...set]) {
      try { h(message) } catch {} // one bad handler must not starve the others or the connection
    }
  }

  /** Ends both connections, stops reconnecting, rejects what is pending. Idempotent. */
  close() {
    if (this._closed) return
    this._closed = true
    this._cmd.stop(true)
    this._sub.stop(true)
    this._channels.clear()
  }
}

module.exports = { RedisClient, parseRedisUrl, RedisReplyError }
