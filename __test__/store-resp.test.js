'use strict'
// lib/store/resp.js, the Redis client behind redisStore, against a real redis-server (started
// and stopped here) and, for the reply parser's chunk boundaries, a scripted fake server.
const test = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')
const path = require('node:path')
const { RedisClient, parseRedisUrl, RedisReplyError } = require('../lib/store/resp.js')
const { startRedis, requireRedis } = require('./helpers/redis.js')
const { has } = require('./helpers/tools.js')
const { sleep, waitFor, runNode, uniq } = require('./helpers.js')

const T = 30_000 // per test: a regression fails, it does not hang the run
const RESP = path.join(__dirname, '..', 'lib', 'store', 'resp.js')
let redis = null
const clients = []

test.before(async () => {
  if (has('redis-server')) redis = await startRedis()
})
test.after(async () => {
  for (const c of clients) c.close()
  if (redis) await redis.stop()
})

/** A client on the test server, closed after the file. */
function client(opts = {}, url = redis.url) {
  const c = new RedisClient({ url, ...opts })
  clients.push(c)
  return c
}

/** Resolves with the rejection of `p` (fails if it resolves) and how long it took. */
async function rejection(p) {
  const t = process.hrtime.bigint()
  try {
    const v = await p
    assert.fail(`expected a rejection, got ${JSON.stringify(v)}`)
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err
    return { err, ms: Number(process.hrtime.bigint() - t) / 1e6 }
  }
}

/** A port of 127.0.0.1 that was free a moment ago (nothing listens there). */
async function closedPort() {
  const srv = net.createServer()
  await new Promise((r) => srv.listen(0, '127.0.0.1', r))
  const { port } = srv.address()
  await new Promise((r) => srv.close(r))
  return port
}

/** Publishes until at least one subscriber receives it (subscriptions confirm asynchronously). */
async function publishUntilHeard(pub, channel, message, ms = 10_000) {
  const end = Date.now() + ms
  while (Date.now() < end) {
    const n = await pub.command(['PUBLISH', channel, message]).catch(() => 0)
    if (n >= 1) return
    await sleep(20)
  }
  assert.fail(`nobody subscribed to ${channel} within ${ms} ms`)
}

test('parseRedisUrl: defaults, user and password, db, rediss, IPv6', { timeout: T }, () => {
  assert.deepEqual(parseRedisUrl('redis://localhost'),
    { tls: false, host: 'localhost', port: 6379, username: null, password: null, db: 0 })
  assert.deepEqual(parseRedisUrl('rediss://alice:p%40ss@cache.example.com:6380/3'),
    { tls: true, host: 'cache.example.com', port: 6380, username: 'alice', password: 'p@ss', db: 3 })
  assert.deepEqual(parseRedisUrl('redis://:s3cret@10.0.0.1/0'),
    { tls: false, host: '10.0.0.1', port: 6379, username: null, password: 's3cret', db: 0 })
  assert.deepEqual(parseRedisUrl('redis://[::1]:7000/'),
    { tls: false, host: '::1', port: 7000, username: null, password: null, db: 0 })
})

test('parseRedisUrl: bad input is a TypeError naming url that shows no part of the url (any part may hold a password)', { timeout: T }, () => {
  const cases = [
    ['http://bob:hunter2@h:6379', /redis:\/\/ or rediss:\/\//],
    ['redis://bob:hunter2@h:notaport', /not a URL/],
    ['redis://bob:hunter2@h/x', /database number/],
    ['redis://:hunter2@', /./],
    ['redis://hunter2@h', /user name without a password/],
    ['redis://:hunter2@h:0', /port 0/],
    ['redis://:hunter2@h/0?tls=true', /query/],
    // An unescaped '/' in the password: the rest of it parses as the path (issue 13, defect 7).
    ['redis://Zq9/hunter2+Vx2@h:6379', /database number.*percent-encoded/],
    ['redis://:Zq9#hunter2@h', /not a URL|fragment/],
    ['redis://:Zq9?hunter2@h', /not a URL|query/],
  ]
  for (const [url, why] of cases) {
    assert.throws(() => parseRedisUrl(url), (err) => {
      assert.ok(err instanceof TypeError, `${url}: ${err}`)
      assert.match(err.message, /\burl\b/)
      assert.match(err.message, why)
      for (const part of ['hunter2', 'Zq9', 'Vx2', 'bob']) assert.ok(!err.message.includes(part), `${part} shown: ${err.message}`)
      return true
    })
  }
  for (const v of [undefined, null, 6379, {}]) assert.throws(() => parseRedisUrl(v), { name: 'TypeError', message: /url/ })
  assert.throws(() => new RedisClient({ url: 'redis://:hunter2@h:x' }), (e) => e instanceof TypeError && !e.message.includes('hunter2'))
  assert.throws(() => new RedisClient({ url: 'redis://h', commandTimeoutMs: 0 }), { name: 'TypeError', message: /commandTimeoutMs/ })
})

test('replies: simple, integer, bulk, nil, nil array, nested arrays, error replies', { timeout: T }, async (t) => {
  if (!requireRedis(t)) return
  const c = client()
  const k = uniq('k')
  assert.equal(await c.command(['SET', k, 'héllo ✓']), 'OK')
  assert.equal(await c.command(['GET', k]), 'héllo ✓')
  assert.equal(await c.command(['GET', `${k}:missing`]), null)
  assert.equal(await c.command(['INCR', `${k}:n`]), 1)
  assert.equal(await c.command(['INCRBY', `${k}:n`, 41]), 42)
  assert.equal(await c.command(['HINCRBY', `${k}:h`, 'f', -3]), -3)
  assert.equal(await c.command(['HINCRBY', `${k}:h`, 'f', 10]), 7)
  assert.deepEqual(await c.command(['HGETALL', `${k}:h`]), ['f', '7'])
  assert.equal(await c.command(['SET', Buffer.from(`${k}:b`), Buffer.from('bytes')]), 'OK')
  assert.equal(await c.command(['GET', `${k}:b`]), 'bytes')
  assert.equal(await c.command(['BLPOP', `${k}:empty`, '0.01']), null) // nil array on timeout
  assert.deepEqual(await c.command(['EVAL', "return {1, {2, 'x', {}}, false}", 0]), [1, [2, 'x', []], null])
  const { err } = await rejection(c.command(['INCR', k]))
  assert.ok(err instanceof RedisReplyError)
  assert.equal(err.name, 'RedisReplyError')
  assert.equal(err.message, 'ERR value is not an integer or out of range')
  const wrong = await rejection(c.command(['NOSUCHCOMMAND']))
  assert.match(wrong.err.message, /^ERR unknown command/)
  await assert.rejects(c.command([]), TypeError)
  await assert.rejects(c.command(['SET', k, {}]), TypeError)
  assert.equal(await c.command(['GET', k]), 'héllo ✓', 'the connection is still in step after the errors')
  assert.equal(c.healthy, true)
})

test('commands issued while connecting wait for the connect, and come back in order', { timeout: T }, async (t) => {
  if (!requireRedis(t)) return
  const statuses = []
  const c = client({ onStatus: (h, e) => statuses.push([h, e]) })
  assert.equal(c.healthy, false, 'not connected before the first command')
  const k = uniq('order')
  const replies = await Promise.all([
    c.command(['RPUSH', k, 'a']), c.command(['RPUSH', k, 'b']), c.command(['LRANGE', k, 0, -1]), c.command(['PING']),
  ])
  assert.deepEqual(replies, [1, 2, ['a', 'b'], 'PONG'])
  assert.deepEqual(statuses, [[true, null]])
  assert.equal(c.lastError, null)
})

test('pipeline: one write, an error reply in the middle does not fail the rest', { timeout: T }, async (t) => {
  if (!requireRedis(t)) return
  const c = client()
  const k = uniq('p')
  const r = await c.pipeline([['SET', k, 'x'], ['INCR', k], ['GET', k], ['LPUSH', k, 'y'], ['DEL', k], ['GET', k]])
  assert.equal(r.length, 6)
  assert.equal(r[0], 'OK')
  assert.ok(r[1] instanceof RedisReplyError)
  assert.match(r[1].message, /not an integer/)
  assert.equal(r[2], 'x')
  assert.ok(r[3] instanceof RedisReplyError)
  assert.match(r[3].message, /^WRONGTYPE/)
  assert.deepEqual(r.slice(4), [1, null])
  assert.deepEqual(await c.pipeline([]), [])
  // Many replies in few chunks.
  const many = await c.pipeline(Array.from({ length: 2000 }, (_, i) => ['ECHO', `m${i}`]))
  assert.deepEqual(many, Array.from({ length: 2000 }, (_, i) => `m${i}`))
})

test('a 1 MB bulk string round-trips', { timeout: T }, async (t) => {
  if (!requireRedis(t)) return
  const c = client()
  const k = uniq('big')
  let big = ''
  while (big.length < 1024 * 1024) big += `${big.length % 9973}é\r\n$-1\r\n`
  big = big.slice(0, 1024 * 1024)
  assert.equal(await c.command(['SET', k, big]), 'OK')
  const back = await c.command(['GET', k])
  assert.equal(back.length, big.length)
  assert.ok(back === big, 'the 1 MB value came back different')
  const [a, b, d] = await c.pipeline([['GET', k], ['STRLEN', k], ['GET', k]])
  assert.ok(a === big && d === big)
  assert.equal(b, Buffer.byteLength(big))
})

test('the parser takes replies split at any byte, and many replies in one chunk', { timeout: T }, async () => {
  // Seven replies of every type; 'hé!' is 4 bytes, so some splits fall inside a character.
  const wire = Buffer.from('+OK\r\n:42\r\n$4\r\nhé!\r\n*2\r\n*1\r\n$-1\r\n:-7\r\n-ERR bad thing\r\n$0\r\n\r\n*-1\r\n')
  const check = (r) => {
    assert.equal(r.length, 7)
    assert.deepEqual(r.slice(0, 4), ['OK', 42, 'hé!', [[null], -7]])
    assert.ok(r[4] instanceof RedisReplyError)
    assert.equal(r[4].message, 'ERR bad thing')
    assert.deepEqual(r.slice(5), ['', null])
  }
  const request = Buffer.from('*1\r\n$4\r\nPING\r\n'.repeat(7))
  let plan = null // how the next response is cut
  const server = net.createServer((s) => {
    s.setNoDelay(true)
    let got = 0
    s.on('data', async (d) => {
      got += d.length
      if (got < request.length) return
      got -= request.length
      let at = 0
      for (const cut of [...plan, wire.length]) {
        s.write(wire.subarray(at, cut))
        at = cut
        await sleep(2)
      }
    })
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  try {
    const c = client({}, `redis://127.0.0.1:${server.address().port}`)
    const pings = Array.from({ length: 7 }, () => ['PING'])
    plan = []
    check(await c.pipeline(pings))
    for (let i = 1; i < wire.length; i++) {
      plan = [i]
      check(await c.pipeline(pings))
    }
    plan = Array.from({ length: wire.length - 1 }, (_, i) => i + 1) // one byte at a time
    check(await c.pipeline(pings))
    c.close()
  } finally {
    server.close()
  }
})

test('script(): EVALSHA, falling back to EVAL after SCRIPT FLUSH', { timeout: T }, async (t) => {
  if (!requireRedis(t)) return
  const c = client()
  const k = uniq('s')
  const lua = "return redis.call('INCRBY', KEYS[1], ARGV[1]) .. ':' .. ARGV[2]"
  const s = c.script(lua)
  assert.match(s.sha, /^[0-9a-f]{40}$/)
  const calls = async () => {
    const info = await c.command(['INFO', 'commandstats'])
    const n = (cmd) => Number((info.match(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`)) || [])[1] || 0)
    return { eval: n('eval'), evalsha: n('evalsha') }
  }
  await c.command(['SCRIPT', 'FLUSH'])
  await c.command(['CONFIG', 'RESETSTAT'])
  assert.equal(await s.run([k], [5, 'a']), '5:a')
  assert.deepEqual(await calls(), { eval: 1, evalsha: 1 }, 'NOSCRIPT, then EVAL')
  assert.equal(await s.run([k], [2, 'b']), '7:b')
  assert.deepEqual(await calls(), { eval: 1, evalsha: 2 }, 'cached: EVALSHA alone')
  assert.deepEqual(await c.command(['SCRIPT', 'EXISTS', s.sha]), [1])
  await c.command(['SCRIPT', 'FLUSH'])
  assert.deepEqual(await c.command(['SCRIPT', 'EXISTS', s.sha]), [0])
  assert.equal(await s.run([k], [1, 'c']), '8:c')
  assert.deepEqual(await calls(), { eval: 2, evalsha: 3 })
  const failing = c.script("return redis.error_reply('MYERR nope')")
  const { err } = await rejection(failing.run())
  assert.ok(err instanceof RedisReplyError)
  assert.equal(err.message, 'MYERR nope')
})

test('subscribe: messages from another client, a throwing handler, unsubscribe', { timeout: T }, async (t) => {
  if (!requireRedis(t)) return
  const sub = client()
  const pub = client()
  const ch = uniq('ch')
  const got = []
  const un = sub.subscribe(ch, (m) => got.push(m))
  const unBad = sub.subscribe(ch, () => { throw new Error('handler bug') })
  await publishUntilHeard(pub, ch, 'first')
  assert.ok(await waitFor(() => got.includes('first')))
  assert.equal(await pub.command(['PUBLISH', ch, 'second ✓']), 1, 'one connection subscribed')
  assert.ok(await waitFor(() => got.includes('second ✓')), `got ${JSON.stringify(got)}`)
  assert.equal(got.filter((m) => m === 'second ✓').length, 1)
  // Commands on the same client still work: the subscriber connection is a separate one.
  assert.equal(await sub.command(['PING']), 'PONG')
  // A second channel keeps the subscriber connection open, so unsubscribing ch sends UNSUBSCRIBE.
  const other = uniq('ch2')
  const gotOther = []
  const unOther = sub.subscribe(other, (m) => gotOther.push(m))
  await publishUntilHeard(pub, other, 'o1')
  const silent = async (channel) => { // PUBLISH until nobody receives it
    const end = Date.now() + 2000
    let n = 1
    while (n !== 0 && Date.now() < end) {
      n = await pub.command(['PUBLISH', channel, 'after'])
      if (n !== 0) await sleep(10)
    }
    return n
  }
  unBad()
  un()
  un() // idempotent
  assert.equal(await silent(ch), 0, 'still subscribed to ch after unsubscribe')
  assert.equal(await pub.command(['PUBLISH', other, 'o2']), 1, 'the other channel went too')
  assert.ok(await waitFor(() => gotOther.includes('o2')))
  unOther() // the last channel: the subscriber connection closes
  assert.equal(await silent(other), 0)
  await sleep(20)
  assert.ok(!got.includes('after') && !gotOther.includes('after'), 'a message after unsubscribe was delivered')
  assert.equal(sub.healthy, true)
})

test('SELECT: a db in the URL isolates keys', { timeout: T }, async (t) => {
  if (!requireRedis(t)) return
  const k = uniq('db')
  const d3 = client({}, `${redis.url}/3`)
  const d0 = client({}, `${redis.url}/0`)
  const d3b = client({}, `${redis.url}/3`)
  assert.equal(await d3.command(['SET', k, 'three']), 'OK')
  assert.equal(await d0.command(['GET', k]), null)
  assert.equal(await d3b.command(['GET', k]), 'three')
  assert.equal(await d0.command(['EXISTS', k]), 0)
  const info = await d3.command(['CLIENT', 'INFO'])
  assert.match(info, /\bdb=3\b/)
})

test('AUTH: user and password from the URL; a wrong password marks the client down', { timeout: T }, async (t) => {
  if (!requireRedis(t)) return
  const admin = client()
  const user = uniq('u')
  await admin.command(['ACL', 'SETUSER', user, 'on', '>pa:ss@w0rd', '~*', '&*', '+@all'])
  try {
    const ok = client({}, `redis://${user}:${encodeURIComponent('pa:ss@w0rd')}@127.0.0.1:${redis.port}/2`)
    assert.equal(await ok.command(['ACL', 'WHOAMI']), user)
    assert.match(await ok.command(['CLIENT', 'INFO']), /\bdb=2\b/)
    const statuses = []
    const bad = client({ onStatus: (h, e) => statuses.push([h, e]) }, `redis://${user}:wrong@127.0.0.1:${redis.port}`)
    const { err } = await rejection(bad.command(['PING']))
    assert.equal(err.code, 'BREAKWATER_STORE_DOWN')
    assert.match(err.message, /WRONGPASS/)
    assert.ok(!err.message.includes('wrong@'))
    assert.equal(bad.healthy, false)
    assert.match(bad.lastError, /^AUTH failed: WRONGPASS/)
    assert.deepEqual(statuses, [[false, bad.lastError]])
  } finally {
    await admin.command(['ACL', 'DELUSER', user])
  }
})

test('unreachable: the first command rejects with BREAKWATER_STORE_DOWN; a throwing onStatus is harmless', { timeout: T }, async () => {
  const port = await closedPort()
  let calls = 0
  const c = client({ onStatus: () => { calls++; throw new Error('callback bug') } }, `redis://127.0.0.1:${port}`)
  const { err } = await rejection(c.command(['PING']))
  assert.equal(err.code, 'BREAKWATER_STORE_DOWN')
  assert.match(err.message, /ECONNREFUSED/)
  assert.equal(c.healthy, false)
  assert.match(c.lastError, /ECONNREFUSED/)
  assert.equal(calls, 1)
  const again = await rejection(c.command(['PING']))
  assert.equal(again.err.code, 'BREAKWATER_STORE_DOWN')
  assert.ok(again.ms < 50, `took ${again.ms} ms`)
})

test('connect timeout: a server that never answers the TLS handshake', { timeout: T }, async () => {
  const sockets = []
  const srv = net.createServer((s) => sockets.push(s)) // accepts, then says nothing
  await new Promise((r) => srv.listen(0, '127.0.0.1', r))
  try {
    const c = client({ connectTimeoutMs: 200 }, `rediss://127.0.0.1:${srv.address().port}`)
    const { err, ms } = await rejection(c.command(['PING']))
    assert.equal(err.code, 'BREAKWATER_STORE_DOWN')
    assert.match(err.message, /timed out after 200 ms/)
    assert.ok(ms >= 190 && ms < 1000, `took ${ms} ms`)
    assert.match(c.lastError, /timed out/)
    c.close()
  } finally {
    for (const s of sockets) s.destroy()
    srv.close()
  }
})

test('command timeout: no reply within commandTimeoutMs drops the connection, then it recovers', { timeout: T }, async (t) => {
  if (!requireRedis(t)) return
  const statuses = []
  const c = client({ commandTimeoutMs: 100, onStatus: (h, e) => statuses.push([h, e]) })
  const k = uniq('to')
  assert.equal(await c.command(['SET', k, 'v']), 'OK')
  const slow = rejection(c.command(['DEBUG', 'SLEEP', '0.5']))
  const behind = rejection(c.command(['GET', k])) // pending on the same connection
  const started = Date.now()
  const [a, b] = await Promise.all([slow, behind])
  assert.equal(a.err.code, 'BREAKWATER_STORE_TIMEOUT')
  assert.match(a.err.message, /timed out after 100 ms/)
  assert.equal(b.err.code, 'BREAKWATER_STORE_TIMEOUT')
  assert.ok(a.ms >= 90 && a.ms < 400, `took ${a.ms} ms`)
  assert.equal(c.healthy, false)
  assert.match(c.lastError, /timed out/)
  await sleep(Math.max(0, 650 - (Date.now() - started))) // let the server wake up
  assert.ok(await waitFor(() => c.healthy, 5000), 'did not reconnect')
  assert.equal(await c.command(['GET', k]), 'v')
  assert.deepEqual(statuses.map((s) => s[0]).slice(0, 3), [true, false, true])
})

test('close(): rejects pending commands, is idempotent, stops everything', { timeout: T }, async (t) => {
  if (!requireRedis(t)) return
  const c = client()
  assert.equal(await c.command(['PING']), 'PONG')
  c.subscribe(uniq('ch'), () => {})
  const blocked = rejection(c.command(['BLPOP', uniq('nothing'), 5]))
  await sleep(20)
  c.close()
  c.close()
  const { err, ms } = await blocked
  assert.equal(err.code, 'BREAKWATER_STORE_DOWN')
  assert.ok(ms < 1000, `took ${ms} ms`)
  const after = await rejection(c.command(['PING']))
  assert.equal(after.err.code, 'BREAKWATER_STORE_DOWN')
  assert.match(after.err.message, /closed/)
  assert.throws(() => c.subscribe('x', () => {}), { code: 'BREAKWATER_STORE_DOWN' })
  await sleep(300)
  assert.equal(c.healthy, false, 'reconnected after close()')
})

test('Redis stopped mid-run: commands reject at once; after a restart the client and its subscription come back', { timeout: T }, async (t) => {
  if (!requireRedis(t)) return
  const statuses = []
  const c = client({ onStatus: (h, e) => statuses.push([h, e]) })
  const pub = client()
  const ch = uniq('ch')
  const got = []
  c.subscribe(ch, (m) => got.push(m))
  assert.equal(await c.command(['SET', 'before', '1']), 'OK')
  await publishUntilHeard(pub, ch, 'one')
  assert.ok(await waitFor(() => got.includes('one')))
  assert.equal(c.healthy, true)

  await redis.stop()
  assert.ok(await waitFor(() => !c.healthy, 2000), 'healthy after the server stopped')
  assert.equal(typeof c.lastError, 'string')
  assert.ok(c.lastError.length > 0)
  for (let i = 0; i < 20; i++) {
    const { err, ms } = await rejection(c.command(['GET', 'before']))
    assert.equal(err.code, 'BREAKWATER_STORE_DOWN', err.message)
    assert.ok(ms < 50, `command ${i} took ${ms} ms to reject`)
    await sleep(25)
  }
  assert.equal(c.healthy, false)

  await redis.start()
  assert.ok(await waitFor(() => c.healthy, 10_000), `no reconnect; lastError ${c.lastError}`)
  assert.equal(await c.command(['GET', 'before']), null, 'a new, empty server')
  assert.equal(await c.command(['SET', 'after', '2']), 'OK')
  await publishUntilHeard(pub, ch, 'two')
  assert.ok(await waitFor(() => got.includes('two')), `got ${JSON.stringify(got)}`)
  assert.deepEqual(statuses.map((s) => s[0]), [true, false, true])
  assert.equal(typeof statuses[1][1], 'string')
})

test('a process with a client it never closes exits by itself', { timeout: T }, async (t) => {
  if (!requireRedis(t)) return
  const down = `redis://127.0.0.1:${await closedPort()}`
  const code = `
    const { RedisClient } = require(${JSON.stringify(RESP)})
    const c = new RedisClient({ url: ${JSON.stringify(redis.url)} })
    c.subscribe('exit-test', () => {})
    c.command(['SET', 'exit-test', 'x']).then((r) => console.log(r))
    const d = new RedisClient({ url: ${JSON.stringify(down)} })
    d.command(['PING']).catch((e) => console.log(e.code))`
  const r = await runNode(['-e', code], { limitMs: 5000 })
  assert.equal(r.signal, null, `killed after ${r.ms} ms: it did not exit by itself. stderr: ${r.err}`)
  assert.equal(r.code, 0, r.err)
  assert.deepEqual(r.out.split('\n').filter(Boolean).sort(), ['BREAKWATER_STORE_DOWN', 'OK'])
  assert.ok(r.ms < 5000)
})

/** A fake server that answers SUBSCRIBE, then runs `after(socket)`. */
async function fakeSubscribeServer(after) {
  const sockets = new Set()
  const server = net.createServer((s) => {
    sockets.add(s)
    s.on('error', () => {})
    s.on('close', () => sockets.delete(s))
    s.once('data', () => {
      s.write('*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n')
      after(s)
    })
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  return {
    url: `redis://127.0.0.1:${server.address().port}`,
    close() {
      for (const s of sockets) s.destroy()
      server.close()
    },
  }
}

test('subscriber: a server streaming one endless value is cut off at the size bound, memory stays bounded', { timeout: T }, async () => {
  // Issue 13, defect 5: the subscriber has no pending command, so no command timeout ever
  // ended this; the client grew to 1.6 GB in 6 s.
  let sent = 0
  const chunk = Buffer.alloc(64 * 1024, 'x')
  const srv = await fakeSubscribeServer((s) => {
    s.write('*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1000000000\r\n')
    const pump = () => {
      while (!s.destroyed && sent < 300e6 && s.write(chunk)) sent += chunk.length
      if (!s.destroyed) s.once('drain', pump)
    }
    pump()
  })
  const rss0 = process.memoryUsage().rss
  const c = client({ maxMessage: 16 * 1024 }, srv.url)
  let heard = 0
  c.subscribe('ch', () => heard++)
  try {
    await waitFor(() => /at most/.test(c.lastError || ''), 5_000)
    assert.match(c.lastError, /bulk string of 1000000000 bytes \(at most 65536\)/)
    assert.equal(heard, 0)
    assert.ok(process.memoryUsage().rss - rss0 < 100e6, `rss grew by ${((process.memoryUsage().rss - rss0) / 1e6).toFixed(0)} MB`)
  } finally {
    c.close()
    srv.close()
  }
})

test('a slowly sent huge array is refused at its header; a 1,000-element array sent one element per chunk parses once', { timeout: T }, async () => {
  // Issue 13, defect 5: arrays were re-parsed from their start on every chunk (1.2 s stalls).
  const srv = await fakeSubscribeServer((s) => { s.write('*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n*5000000\r\n') })
  const c = client({}, srv.url)
  c.subscribe('ch', () => {})
  try {
    await waitFor(() => /at most/.test(c.lastError || ''), 5_000)
    assert.match(c.lastError, /array of 5000000 elements \(at most 8\)/)
  } finally {
    c.close()
    srv.close()
  }
  // On the command connection: 1,000 elements, each in its own write.
  const server = net.createServer((s) => {
    s.setNoDelay(true)
    s.once('data', async () => {
      s.write('*1000\r\n')
      for (let i = 0; i < 1000; i++) {
        s.write(`$${String(i).length}\r\n${i}\r\n`)
        if (i % 50 === 0) await sleep(1)
      }
    })
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  try {
    const c2 = client({}, `redis://127.0.0.1:${server.address().port}`)
    const r = await c2.command(['LRANGE', 'x', '0', '-1'])
    assert.deepEqual(r, Array.from({ length: 1000 }, (_, i) => String(i)))
    c2.close()
  } finally {
    server.close()
  }
})
