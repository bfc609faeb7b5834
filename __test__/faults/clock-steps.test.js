'use strict'
// Fault injection: the wall clock steps (NTP, a VM resume, a manual change) forward and back,
// by seconds and by a day, while calls are in flight, a circuit is OPEN or HALF_OPEN and a
// time window holds counts; and the process is frozen (SIGSTOP) like a Lambda environment
// between invocations. Durations must follow the time that really passed, never the wall
// clock. The steps happen in child processes under libfaketime (Debian package `faketime`),
// which fakes the wall clock for Node (Date.now) and Rust (SystemTime) alike and, with
// FAKETIME_DONT_FAKE_MONOTONIC, leaves the monotonic clocks alone, as NTP does.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { missing } = require('../helpers/tools.js')

const CHILD = path.join(__dirname, '..', 'fixtures', 'clock-steps.js')
const LIB_DIRS = ['x86_64-linux-gnu', 'aarch64-linux-gnu', '.', '../lib64'].map((d) => path.join('/usr/lib', d, 'faketime'))

function libfaketime() {
  const dirs = process.env.LIBFAKETIME_DIR ? [process.env.LIBFAKETIME_DIR, ...LIB_DIRS] : LIB_DIRS
  for (const d of dirs) {
    // The MT build: Node and the breaker's clock thread read clocks from several threads.
    const f = path.join(d, 'libfaketimeMT.so.1')
    if (fs.existsSync(f)) return f
  }
  return null
}

/** Runs the child (under libfaketime when `env.STEP` is set); resolves with its JSON report. */
function runChild(env, onStdout) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bw-clock-'))
  const rc = path.join(dir, 'faketime.rc')
  fs.writeFileSync(rc, '+0\n')
  const child = spawn(process.execPath, [CHILD], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: env.STEP === undefined ? { ...process.env, ...env } : {
      ...process.env,
      ...env,
      LD_PRELOAD: libfaketime(),
      FAKETIME_TIMESTAMP_FILE: rc,
      FAKETIME_NO_CACHE: '1',
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    },
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (d) => {
    out += d
    if (onStdout) onStdout(out, child)
  })
  child.stderr.on('data', (d) => { err += d })
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  return new Promise((resolve, reject) => {
    child.on('close', (code) => {
      clearTimeout(killer)
      fs.rmSync(dir, { recursive: true, force: true })
      try {
        if (code !== 0) throw new Error(`exited with ${code}`)
        resolve(JSON.parse(out.trim().split('\n').pop()))
      } catch (e) {
        reject(new Error(`child: ${e.message}; stdout: ${out}; stderr: ${err}`))
      }
    })
  })
}

// How late a duration may end on this loaded, shared machine; "early" allows 1 ms of timer rounding.
const LATE_MS = 1500

function within(ms, expected, what) {
  assert.ok(ms !== null, `${what}: never happened (waited 5 s)`)
  assert.ok(ms >= expected - 1, `${what} after ${ms.toFixed(0)} ms: early (expected ${expected} ms)`)
  assert.ok(ms <= expected + LATE_MS, `${what} after ${ms.toFixed(0)} ms: late (expected ${expected} ms)`)
}

const STEPS = [
  ['back 90 s', '-90', -90_000],
  ['forward 90 s', '+90', 90_000],
  ['back a day', '-1d', -86_400_000],
  ['forward a day', '+1d', 86_400_000],
]

for (const [label, spec, ms] of STEPS) {
  test(`wall clock stepped ${label}: timeouts, open periods, halfOpenTimeout and the window follow elapsed time`, async (t) => {
    if (libfaketime() === null) return missing(t, 'libfaketime is not installed; install it with: apt-get install -y faketime')
    const r = await runChild({ STEP: spec })

    // The step reached both clocks that could be misused, and left the monotonic ones alone.
    assert.ok(Math.abs(r.jump.date - ms) < 1000, `Date.now() did not step: ${JSON.stringify(r.jump)}`)
    assert.ok(Math.abs(r.jump.rust - ms) < 1000, `Rust's SystemTime did not step: ${JSON.stringify(r.jump)}`)
    assert.ok(Math.abs(r.jump.mono) < 1000 && Math.abs(r.jump.perf) < 1000, `a monotonic clock stepped: ${JSON.stringify(r.jump)}`)

    // timeout: 1000 on a hung action: rejects after 1 s, started before or after the step.
    for (const [i, c] of r.timeouts.entries()) {
      assert.equal(c.name, 'CircuitBreakerTimeoutError', `call ${i}`)
      within(c.ms, 1000, `call ${i} timed out`)
    }

    // OPEN with resetTimeout 1000: right after the step it reports what is really left, as a
    // duration and as a moment of the stepped wall clock; then half-opens after 1 s.
    const o = r.open
    assert.equal(o.state, 'OPEN')
    assert.ok(o.retryAfterMs > 0 && o.retryAfterMs <= 1000, `retryAfterMs ${o.retryAfterMs}`)
    assert.ok(Math.abs(o.nextAttemptIn - o.retryAfterMs) <= 50, `nextAttemptAt is ${o.nextAttemptIn} ms from Date.now(), retryAfterMs ${o.retryAfterMs}`)
    assert.ok(Math.abs(o.changedAtError) <= 100, `stateChangedAt is off by ${o.changedAtError} ms in the new wall frame`)
    assert.ok(Math.abs(o.lastFailureAtError) <= 100, `lastFailureAt is off by ${o.lastFailureAtError} ms in the new wall frame`)
    assert.equal(o.rejected.name, 'CircuitBreakerOpenError')
    assert.ok(o.rejected.retryAfterMs > 0 && o.rejected.retryAfterMs <= 1000, `the open error's retryAfterMs ${o.rejected.retryAfterMs}`)
    within(r.halfOpenMs, 1000, 'OPEN -> HALF_OPEN')
    assert.equal(r.closedAfterProbe, 'CLOSED')

    // halfOpenTimeout 1000 with a hung probe: re-opens after 1 s.
    within(r.reopenMs, 1000, 'HALF_OPEN -> OPEN by halfOpenTimeout')

    // The window keeps the counts of before the step (4 of 8 failed), and 2 more failures make
    // 6 of 10: it trips. A window that filled only after the step trips too.
    assert.equal(r.window.calls, 8, 'window calls right after the step')
    assert.deepEqual(r.window.after, { state: 'OPEN', calls: 10 })
    assert.deepEqual(r.fill, { state: 'OPEN', failures: 10 })
  })
}

test('a frozen process (SIGSTOP for 1.5 s): a call due during the freeze times out on the thaw, an open period that ended is over', async () => {
  const FREEZE_MS = 1500
  let stopped = false
  const r = await runChild({ MODE: 'freeze' }, (out, child) => {
    if (stopped || !out.includes('ready\n')) return
    stopped = true
    child.kill('SIGSTOP')
    setTimeout(() => child.kill('SIGCONT'), FREEZE_MS)
  })
  assert.ok(r.thawed.ms >= FREEZE_MS - 1, `thawed after ${r.thawed.ms} ms`)
  // resetTimeout 1000 passed while frozen: HALF_OPEN on the first look after the thaw.
  assert.equal(r.thawed.state, 'HALF_OPEN')
  // timeout 1000 passed while frozen: the call rejects on the thaw, not a second later.
  assert.equal(r.timeout.name, 'CircuitBreakerTimeoutError')
  assert.ok(r.timeout.ms >= 999 && r.timeout.ms <= r.thawed.ms + 500, `the frozen call timed out after ${r.timeout.ms} ms (thawed after ${r.thawed.ms} ms)`)
})
