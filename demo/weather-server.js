'use strict'
// A deliberately flaky "weather API" for the breakwater demo. Plain node:http, bound to
// 127.0.0.1 on an ephemeral port, so the demo needs no network and never collides with
// anything else listening on the machine.
//
// The demo owns the timeline: `phaseOf()` says whether the API is 'healthy' or 'failing'
// right now, so the server and the narration always agree about what is going on.
// While failing, two requests in three get a quick 503 and every third one hangs: it is
// answered only after `hangMs`, long after the client's per-call timeout, unless the
// client gives up (aborts) first — which the server notices and counts.
const http = require('node:http')

function startWeatherServer({ phaseOf, onRequest = () => {}, hangMs = 2000 }) {
  const counts = { total: 0, ok: 0, unavailable: 0, hung: 0, hungAbortedByClient: 0 }
  const lateTimers = new Set()
  let failingSeq = 0

  const reading = () => ({
    city: 'Oslo',
    // A slowly drifting temperature, so cached readings visibly differ from fresh ones.
    tempC: Number((6 + 3 * Math.sin(Date.now() / 4000)).toFixed(1)),
    observedAt: new Date().toISOString(),
  })
  const sendJson = (res, status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(body))
  }

  const server = http.createServer((req, res) => {
    counts.total++
    onRequest(req)
    if (phaseOf() === 'healthy') {
      counts.ok++
      return sendJson(res, 200, reading())
    }
    if (failingSeq++ % 3 !== 2) {
      counts.unavailable++
      return sendJson(res, 503, { error: 'upstream weather station unavailable' })
    }
    counts.hung++
    const timer = setTimeout(() => {
      lateTimers.delete(timer)
      sendJson(res, 200, reading()) // the late answer a breaker must ignore
    }, hangMs)
    lateTimers.add(timer)
    res.on('close', () => {
      // 'close' before the response finished means the client hung up on us.
      if (!res.writableFinished) {
        counts.hungAbortedByClient++
        clearTimeout(timer)
        lateTimers.delete(timer)
      }
    })
  })

  function close() {
    for (const timer of lateTimers) clearTimeout(timer)
    lateTimers.clear()
    server.closeAllConnections() // fetch keeps sockets alive; don't wait for them to idle out
    return new Promise((resolve) => server.close(() => resolve()))
  }

  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      resolve({ url: `http://127.0.0.1:${port}/weather?city=Oslo`, counts, close })
    })
  })
}

module.exports = { startWeatherServer }
