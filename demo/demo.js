'use strict'
// breakwater demo: a flaky weather API, a circuit breaker in front of it, and the story
// told as it happens. The API (served by this process, on 127.0.0.1) is healthy, then
// fails (503s and hangs), then recovers; the breaker opens, answers from a cache without
// touching the API, probes, and closes again.
//
//   npm run demo                  # ~12 s
//   node demo/demo.js --fast      # same story in ~5 s (or DEMO_FAST=1), for tests
//   node demo/demo.js --report out.html   # write the picture somewhere else
//
// It exits non-zero if the story did not happen, so it doubles as a smoke test. It also
// draws the story: demo-report.html (in the current directory, or the --report path) is a
// self-contained page with a timeline of the calls, the failure rate and the breaker's
// state (see demo/report.js).
const fs = require('node:fs')
const path = require('node:path')
const { performance } = require('node:perf_hooks')
const { CircuitBreaker, CircuitBreakerOpenError, CircuitBreakerTimeoutError } = require('..')
const { startWeatherServer } = require('./weather-server')
const { renderReport } = require('./report')

const FAST = process.argv.includes('--fast') || process.env.DEMO_FAST === '1'
const REPORT_PATH = (() => {
  const args = process.argv.slice(2)
  const eq = args.find((a) => a.startsWith('--report='))
  if (eq) return eq.slice('--report='.length)
  const i = args.indexOf('--report')
  if (i === -1) return 'demo-report.html'
  if (!args[i + 1] || args[i + 1].startsWith('--')) {
    console.error('usage: node demo/demo.js [--fast] [--report <path>]')
    process.exit(2)
  }
  return args[i + 1]
})()
// The timeline, in ms since the start. The fast one keeps the same shape, only shorter.
// `recoverAt` is placed so that (usually) the first probe still fails and the second
// succeeds; the checks at the end do not depend on that, only on open -> closed again.
const T = FAST
  ? { tick: 70, timeout: 150, resetTimeout: 700, failAt: 900, recoverAt: 2900, tail: 700, giveUpAt: 15_000 }
  : { tick: 200, timeout: 300, resetTimeout: 2000, failAt: 3000, recoverAt: 8000, tail: 2500, giveUpAt: 40_000 }

let t0 = performance.now()
const now = () => performance.now() - t0
const secs = (ms) => (ms / 1000).toFixed(1).padStart(4)
const log = (msg, at = now()) => console.log(`[${secs(at)}s] ${msg}`)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
// `node demo/demo.js | head` closes stdout early; that is not a failed story.
process.stdout.on('error', (err) => { if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0); else throw err })

// --- the fallback: answer from the last good reading ----------------------------------
let lastGood = null // { reading, at }
let fallbackCause = null // the error the breaker handed the fallback during the current call
function cachedReading(err) {
  fallbackCause = err // remembered only so the narration can say why we fell back
  if (!lastGood) throw err // nothing cached yet: let the caller see the real error
  return { ...lastGood.reading, cachedAt: lastGood.at }
}

const breaker = new CircuitBreaker({
  name: 'weather',
  failureThreshold: 0.5, // open when >= 50% of ...
  minimumRequests: 5, // ... at least 5 calls ...
  window: { type: 'count', size: 20 }, // ... among the last 20 failed
  timeout: T.timeout, // a hung request counts as a failure after this long
  resetTimeout: T.resetTimeout, // stay OPEN this long, then let one probe through
  logger: null, // the demo narrates state changes itself
  fallback: async (err) => cachedReading(err),
})

// --- what the demo observes, to narrate and to check the story at the end -------------
const story = { opened: 0, rejected: 0, rejectedFromCache: 0, timeouts: 0, quickestTimeoutMs: Infinity, failed: 0, tailCalls: 0, tailOk: 0 }
const hitsByState = { CLOSED: 0, OPEN: 0, HALF_OPEN: 0 } // requests that reached the API, by breaker state
let knownState = 'CLOSED'
let closedAgainAt = null // when the circuit last closed after having been open
let openedSnapshot = null // counters when the circuit last opened, to report on the OPEN period
const apiHits = () => hitsByState.CLOSED + hitsByState.OPEN + hitsByState.HALF_OPEN
// ... and recorded, for the picture (demo/report.js): every call and every state change.
const timeline = { calls: [], transitions: [] }

// OPEN and CLOSED are caused by a call's outcome, and the breaker reports them before that
// call's execute() settles; holding them until after the call's own line reads causally.
const pendingChanges = []
const off = breaker.on('stateChange', ({ from, to, reason }) => {
  knownState = to
  timeline.transitions.push({ at: now(), from, to, reason: reason ?? null })
  if (to !== 'HALF_OPEN') return pendingChanges.push({ from, to, reason, at: now() })
  const o = openedSnapshot ?? { rejected: 0, openHits: 0 }
  log(`HALF_OPEN: ${secs(T.resetTimeout).trim()} s are up. While OPEN, ${story.rejected - o.rejected} calls were ` +
    `answered from cache and the API saw ${hitsByState.OPEN - o.openHits} requests. Letting one probe through`)
})

function tellStateChanges() {
  for (const { from, to, reason, at } of pendingChanges.splice(0)) {
    const why = reason ? ` [reason: ${reason}]` : ''
    if (to === 'OPEN') {
      story.opened++
      closedAgainAt = null
      openedSnapshot = { rejected: story.rejected, openHits: hitsByState.OPEN }
      if (from === 'HALF_OPEN') {
        log(`... probe failed -> OPEN again for ${secs(T.resetTimeout).trim()} s${why}`, at)
      } else {
        const s = breaker.getStats() // opening resets nothing, so this is the window that tripped it
        log(`CIRCUIT OPEN (failure rate ${Math.round(s.failureRate)}% >= 50% of the last ${s.window.calls} calls)` +
          ` — calls now go straight to the fallback (the cache) without touching the API${why}`, at)
      }
    } else if (to === 'CLOSED') {
      if (story.opened > 0) closedAgainAt = at
      log(`... probe succeeded -> CLOSED: fresh window, calls go to the API again${why}`, at)
    } else {
      log(`state ${from} -> ${to}${why}`, at)
    }
  }
}

// --- one call through the breaker, narrated ---------------------------------------------
async function callWeather(n, url) {
  const wasOpen = knownState !== 'CLOSED'
  fallbackCause = null
  const started = performance.now()
  let status = null // the API's HTTP status, when it answered
  let result = null
  let thrown = null
  try {
    result = await breaker.execute((signal) =>
      fetch(url, { signal }).then((r) => {
        status = r.status
        if (!r.ok) throw new Error('HTTP ' + r.status)
        return r.json()
      }))
  } catch (err) {
    thrown = err // only when the fallback had nothing cached yet: it rethrows the breaker's error
  }
  const ms = performance.now() - started
  const cause = fallbackCause ?? thrown
  const after = breaker.getStats()
  const w = after.window
  const windowNote = `window ${w.failures}/${w.calls} failed`
  const probe = wasOpen && !(cause instanceof CircuitBreakerOpenError) ? 'probe ' : ''
  const served = result
    ? `served cached reading from ${secs(result.cachedAt).trim()}s (${result.tempC.toFixed(1)}°C)`
    : `nothing cached to fall back on, the caller gets ${cause.name}`
  let outcome
  if (!cause) {
    outcome = 'ok'
    lastGood = { reading: result, at: now() }
    log(`call ${n} -> ${probe}200 OK, ${result.tempC.toFixed(1)}°C in ${ms.toFixed(1)} ms (${windowNote})`)
  } else if (cause instanceof CircuitBreakerOpenError) {
    outcome = 'rejected'
    story.rejected++
    if (result) story.rejectedFromCache++
    const retry = Number.isFinite(cause.retryAfterMs) ? `, next probe in ${(cause.retryAfterMs / 1000).toFixed(1)} s` : ''
    log(`call ${n} -> rejected fast in ${ms.toFixed(2)} ms, ${served}; API untouched (${apiHits()} requests so far${retry})`)
  } else if (cause instanceof CircuitBreakerTimeoutError) {
    outcome = 'timeout'
    story.timeouts++
    story.quickestTimeoutMs = Math.min(story.quickestTimeoutMs, ms) // a timeout must never fire early
    log(`call ${n} -> ${probe}no answer within ${T.timeout} ms: timed out after ${ms.toFixed(0)} ms and aborted, ` +
      `counted as failure (${windowNote}), ${served}`)
  } else {
    outcome = 'failed'
    story.failed++
    log(`call ${n} -> ${probe}${cause.message.replace('HTTP ', '')} from API, counted as failure (${windowNote}), ${served}`)
  }
  timeline.calls.push({
    n,
    at: started - t0,
    ms,
    outcome: outcome === 'failed' ? 'failure' : outcome,
    probe: probe !== '',
    fallback: result !== null && cause !== null,
    status,
    failureRate: after.failureRate,
    windowCalls: w.calls,
    windowFailures: w.failures,
  })
  tellStateChanges()
  return outcome
}

async function main() {
  let storyStarted = false // requests before the story (the warm-up) are not counted
  const server = await startWeatherServer({
    // The API fails between failAt and recoverAt, and is healthy otherwise.
    phaseOf: () => (now() >= T.failAt && now() < T.recoverAt ? 'failing' : 'healthy'),
    // `breaker.state` is the breaker's own view at the moment the request arrives.
    onRequest: () => { if (storyStarted) hitsByState[breaker.state]++ },
  })
  // Warm up fetch outside the story: its first use loads undici, which can take longer
  // than the per-call timeout on a busy machine and would be a false "API hung".
  await (await fetch(server.url)).json()

  console.log(`breakwater demo${FAST ? ' (fast)' : ''}: weather API at ${server.url}`)
  console.log(`breaker 'weather': opens at >= 50% failures among the last 20 calls (min 5), ` +
    `timeout ${T.timeout} ms, probes after ${T.resetTimeout} ms\n`)
  t0 = performance.now()
  storyStarted = true
  log('the weather API is healthy')
  const phaseTimers = [
    setTimeout(() => log('--- the weather API starts failing: 503s, and every third request hangs ---'), T.failAt),
    setTimeout(() => log('--- the weather API has recovered ---'), T.recoverAt),
  ]

  // One call every `tick` ms (sequential, so each line is one call), until the circuit has
  // been closed again for `tail` ms, or we give up.
  let n = 0
  let next = performance.now()
  while (now() < T.giveUpAt && (closedAgainAt === null || now() < closedAgainAt + T.tail)) {
    tellStateChanges() // in case the breaker reported a change after the last call settled
    const countsAsTail = closedAgainAt !== null
    const outcome = await callWeather(++n, server.url)
    if (countsAsTail) { story.tailCalls++; if (outcome === 'ok') story.tailOk++ }
    next += T.tick
    const wait = next - performance.now()
    if (wait > 0) await sleep(wait)
    else next = performance.now()
  }
  const durationMs = now()
  phaseTimers.forEach(clearTimeout)
  tellStateChanges()
  off()
  await server.close()

  const stats = breaker.getStats()
  console.log(`\nThe API saw ${apiHits()} requests: ${hitsByState.CLOSED} while CLOSED, ` +
    `${hitsByState.HALF_OPEN} probes while HALF_OPEN, ${hitsByState.OPEN} while OPEN. ` +
    `${story.rejected} calls were rejected fast and answered from cache.`)
  console.log('\nbreaker.getStats():')
  console.log(JSON.stringify(stats, null, 2))

  // Did the story happen? Each line is something the demo claims; any failure exits 1.
  const checks = [
    [story.opened >= 1, 'the circuit opened while the API was failing'],
    [story.rejected > 0 && story.rejectedFromCache === story.rejected, 'calls rejected while OPEN were answered from the cache'],
    [hitsByState.OPEN === 0, `the API saw no requests while the circuit was OPEN (saw ${hitsByState.OPEN})`],
    [story.timeouts > 0 && story.timeouts === server.counts.hung && server.counts.hungAbortedByClient === server.counts.hung,
      `exactly the hung requests timed out (${story.timeouts} timeouts, ${server.counts.hung} hung), ` +
      `and were aborted through the signal (${server.counts.hungAbortedByClient}/${server.counts.hung})`],
    [story.quickestTimeoutMs >= T.timeout - 1, `no timeout fired early (quickest: ${story.quickestTimeoutMs.toFixed(1)} ms of ${T.timeout})`],
    [closedAgainAt !== null && stats.state === 'CLOSED', 'the circuit closed again after the API recovered'],
    [story.tailCalls > 0 && story.tailOk === story.tailCalls, `calls after closing were answered by the API (${story.tailOk}/${story.tailCalls})`],
    [apiHits() === stats.successCount + stats.failureCount,
      `every call the breaker let through reached the API (${apiHits()} requests = ${stats.successCount} successes + ${stats.failureCount} failures)`],
    [stats.rejectionCount === story.rejected && stats.timeoutCount === story.timeouts &&
      stats.fallbackCount === story.rejected + story.timeouts + story.failed,
      `stats agree with what the demo saw (rejections ${stats.rejectionCount}/${story.rejected}, ` +
      `timeouts ${stats.timeoutCount}/${story.timeouts}, fallbacks ${stats.fallbackCount}/${story.rejected + story.timeouts + story.failed})`],
  ]
  console.log('\nstory checks:')
  for (const [ok, what] of checks) console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`)
  const failed = checks.filter(([ok]) => !ok).length
  console.log(failed ? `\n${failed} check(s) failed: the story did not happen as told.` : '\nthe story happened as told.')
  process.exitCode = failed ? 1 : 0

  // The picture of the same story, written whether or not the checks passed.
  const phases = [
    { from: 0, to: T.failAt, phase: 'healthy' },
    { from: T.failAt, to: T.recoverAt, phase: 'failing' },
    { from: T.recoverAt, to: Infinity, phase: 'healthy' },
  ].map((p) => ({ ...p, to: Math.min(p.to, durationMs) })).filter((p) => p.from < durationMs)
  const html = renderReport({
    ...timeline,
    durationMs,
    phases,
    threshold: stats.failureThreshold,
    windowSize: 20,
    minimumRequests: stats.minimumRequests,
    stats,
    apiRequests: { ...hitsByState },
    storyOk: failed === 0,
    config: { timeout: T.timeout, resetTimeout: T.resetTimeout, tick: T.tick, fast: FAST },
  })
  const reportFile = path.resolve(REPORT_PATH)
  try {
    fs.writeFileSync(reportFile, html)
    console.log(`report: ${reportFile}`)
  } catch (err) {
    console.error(`demo: could not write the report to ${reportFile}: ${err.message}`)
    process.exitCode = 1
  }

  // A breaker keeps no timers, so the process should now exit by itself. If something
  // still holds the event loop, say so and fail rather than hang a test run.
  setTimeout(() => {
    console.error('demo: something kept the process alive after the demo finished')
    process.exit(1)
  }, 3000).unref()
}

main().catch((err) => {
  console.error('demo crashed:', err)
  process.exit(1)
})
