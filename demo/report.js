'use strict'
// The demo's picture: turns the timeline demo.js records into one self-contained HTML page
// (inline SVG and inline CSS; no scripts, no fonts or images fetched from anywhere), so it
// can be opened from disk, attached to an issue, or screenshotted for the README.
//
//   renderReport(timeline) -> string of HTML
//
// timeline = {
//   durationMs,               // length of the story, ms since its start
//   threshold,                // failure-rate threshold as a fraction (0.5 = 50 %)
//   windowSize,               // calls in the sliding window (for the labels)
//   calls: [{                 // one per call through the breaker, in order
//     n, at, ms,              //   call number, start (ms since start), latency (ms)
//     outcome,                //   'ok' | 'failure' (HTTP 503) | 'timeout' | 'rejected' (circuit open)
//     probe,                  //   true if it was the HALF_OPEN probe
//     fallback,               //   true if the fallback answered (from the cache)
//     status,                 //   HTTP status for 'ok' / 'failure', when known
//     failureRate,            //   window failure rate after the call, in % (breaker.getStats())
//     windowCalls, windowFailures,
//   }],
//   transitions: [{ at, from, to, reason }],   // breaker state changes
//   phases: [{ from, to, phase }],             // what the API was doing: 'healthy' | 'failing'
//   stats,                    // breaker.getStats() at the end
//   apiRequests,              // { CLOSED, HALF_OPEN, OPEN }: requests the API saw, by breaker state
//   storyOk,                  // whether demo.js's checks passed
//   config,                   // { timeout, resetTimeout, tick, fast }
// }

const COLORS = {
  ok: '#1a9850',
  failure: '#d7301f',
  timeout: '#f08c00',
  rejected: '#7b8794',
  rate: '#1f5fa8',
  threshold: '#b2182b',
  ink: '#1d2330',
  muted: '#5a6472',
  grid: '#d5d9e0',
}
const BANDS = {
  CLOSED: { fill: '#e3f4e6', label: '#2d6a3e', text: 'CLOSED' },
  OPEN: { fill: '#fbd9d3', label: '#9b2c1f', text: 'OPEN' },
  HALF_OPEN: { fill: '#ffe89a', label: '#7a5a00', text: 'HALF_OPEN' },
}
const OUTCOME_TEXT = {
  ok: '200 OK',
  failure: '503 from the API',
  timeout: 'timed out',
  rejected: 'rejected fast (circuit open)',
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c])
const num = (x) => (Math.round(x * 10) / 10).toString() // SVG coordinates, 1 decimal
const s1 = (ms) => (ms / 1000).toFixed(1)

// A "nice" tick step (1, 2, 5 x 10^k) giving about `target` ticks over `span`.
function niceStep(span, target) {
  const raw = span / target
  const pow = 10 ** Math.floor(Math.log10(raw))
  for (const m of [1, 2, 5, 10]) if (m * pow >= raw) return m * pow
  return 10 * pow
}

// The breaker's state over time as [{ state, from, to }], from its transitions.
function stateBands(transitions, durationMs) {
  const bands = []
  let state = transitions.length ? transitions[0].from : 'CLOSED'
  let from = 0
  for (const t of transitions) {
    bands.push({ state, from, to: t.at })
    state = t.to
    from = t.at
  }
  bands.push({ state, from, to: durationMs })
  return bands.filter((b) => b.to >= b.from)
}

function summarize(tl) {
  const count = (pred) => tl.calls.filter(pred).length
  const ok = count((c) => c.outcome === 'ok')
  const f503 = count((c) => c.outcome === 'failure')
  const timeouts = count((c) => c.outcome === 'timeout')
  const rejected = count((c) => c.outcome === 'rejected')
  const probes = count((c) => c.probe)
  const trips = tl.transitions.filter((t) => t.to === 'OPEN' && t.from === 'CLOSED').length
  const reopened = tl.transitions.filter((t) => t.to === 'OPEN' && t.from === 'HALF_OPEN').length
  const api = tl.apiRequests ?? null
  const apiTotal = api ? api.CLOSED + api.HALF_OPEN + api.OPEN : null
  return { ok, f503, timeouts, rejected, probes, trips, reopened, api, apiTotal, finalState: tl.stats?.state ?? '?' }
}

function renderReport(tl) {
  const W = 1200
  const H = 700
  const X0 = 120 // plot area, left
  const X1 = 1150 // plot area, right
  const durationMs = Math.max(tl.durationMs || 0, ...tl.calls.map((c) => c.at + c.ms), 1)
  const x = (ms) => X0 + (Math.min(Math.max(ms, 0), durationMs) / durationMs) * (X1 - X0)
  const threshold = (tl.threshold ?? 0.5) * 100
  const S = summarize(tl)
  const out = []
  const push = (s) => out.push(s)

  // Vertical layout.
  const API_Y = 108 // API health strip
  const API_H = 14
  const PLOT_TOP = 136 // state bands span from here ...
  const LABEL_Y = PLOT_TOP + 19 // band labels
  const CALLS_Y = PLOT_TOP + 52 // the row of call markers
  const RATE_TOP = PLOT_TOP + 96 // failure-rate panel
  const RATE_BOT = 530 // ... to here (x axis)
  const y = (pct) => RATE_BOT - (pct / 100) * (RATE_BOT - RATE_TOP)

  // --- title and summary ------------------------------------------------------------------
  push(`<text x="40" y="40" class="title">breakwater demo: a flaky weather API behind a circuit breaker</text>`)
  const verdict = tl.storyOk === false ? ' — STORY CHECKS FAILED' : ''
  push(`<text x="40" y="68" class="sub">${esc(
    `${tl.calls.length} calls in ${s1(durationMs)} s: ${S.ok} answered by the API, ` +
    `${S.f503 + S.timeouts} failed (${S.f503} × 503, ${S.timeouts} timeouts), ` +
    `${S.rejected} rejected fast and answered from the cache.`)}</text>`)
  const apiLine = S.api
    ? `The API saw ${S.apiTotal} requests, ${S.api.OPEN} of them while OPEN. `
    : ''
  push(`<text x="40" y="90" class="sub">${esc(
    `Opened ${S.trips}× on failure rate and ${S.reopened}× more after a failed probe ` +
    `(${S.probes} probe${S.probes === 1 ? '' : 's'}). ${apiLine}Final state: ${S.finalState}.`)}` +
    `<tspan class="bad">${esc(verdict)}</tspan></text>`)

  // --- what the API was doing ---------------------------------------------------------------
  push(`<text x="${X0 - 10}" y="${API_Y + API_H - 2}" class="axis" text-anchor="end">weather API</text>`)
  for (const p of tl.phases ?? []) {
    const a = x(p.from)
    const b = x(Math.min(p.to, durationMs))
    if (b <= a) continue
    const failing = p.phase === 'failing'
    push(`<rect x="${num(a)}" y="${API_Y}" width="${num(b - a)}" height="${API_H}" ` +
      `fill="${failing ? 'url(#hatch)' : '#cfe8d5'}" stroke="${failing ? COLORS.failure : '#7fb88e'}" stroke-width="1"/>`)
    const label = failing ? 'failing: 503s, every 3rd request hangs' : 'healthy'
    if (b - a > label.length * 7 + 10) {
      push(`<text x="${num((a + b) / 2)}" y="${API_Y - 5}" class="small" text-anchor="middle" ` +
        `fill="${failing ? COLORS.failure : '#2d6a3e'}">${esc(label)}</text>`)
    }
  }

  // --- state bands ----------------------------------------------------------------------
  const bands = stateBands(tl.transitions ?? [], durationMs)
  for (const b of bands) {
    const st = BANDS[b.state] ?? BANDS.CLOSED
    let a = x(b.from)
    let w = x(b.to) - a
    if (b.state === 'HALF_OPEN' && w < 8) { a -= (8 - w) / 2; w = 8 } // a probe takes ms: keep it visible
    push(`<rect x="${num(a)}" y="${PLOT_TOP}" width="${num(Math.max(w, 0.5))}" height="${RATE_BOT - PLOT_TOP}" ` +
      `fill="${st.fill}"${b.state === 'HALF_OPEN' ? ' stroke="#d9a400" stroke-width="1"' : ''}>` +
      `<title>${esc(`${b.state} from ${s1(b.from)} s to ${s1(b.to)} s`)}</title></rect>`)
  }
  for (const b of bands) {
    const st = BANDS[b.state] ?? BANDS.CLOSED
    const w = x(b.to) - x(b.from)
    const long = b.state === 'OPEN' ? 'OPEN: answered from cache' : st.text
    const text = w > long.length * 8.5 + 8 ? long : st.text
    if (w > text.length * 8.5 + 8) {
      push(`<text x="${num((x(b.from) + x(b.to)) / 2)}" y="${LABEL_Y}" class="band" text-anchor="middle" ` +
        `fill="${st.label}">${esc(text)}</text>`)
    }
  }

  // --- axes and grid ---------------------------------------------------------------------
  const step = niceStep(durationMs / 1000, 14) * 1000
  for (let t = 0; t <= durationMs + 1e-6; t += step) {
    const xx = x(t)
    push(`<line x1="${num(xx)}" y1="${RATE_TOP}" x2="${num(xx)}" y2="${RATE_BOT}" stroke="${COLORS.grid}" stroke-width="0.6" stroke-dasharray="2 3"/>`)
    push(`<line x1="${num(xx)}" y1="${RATE_BOT}" x2="${num(xx)}" y2="${RATE_BOT + 5}" stroke="${COLORS.ink}"/>`)
    const label = step >= 1000 ? (t / 1000).toFixed(0) : (t / 1000).toFixed(1)
    push(`<text x="${num(xx)}" y="${RATE_BOT + 21}" class="axis" text-anchor="middle">${label}</text>`)
  }
  push(`<line x1="${X0}" y1="${RATE_BOT}" x2="${X1}" y2="${RATE_BOT}" stroke="${COLORS.ink}" stroke-width="1.2"/>`)
  push(`<text x="${(X0 + X1) / 2}" y="${RATE_BOT + 42}" class="axis" text-anchor="middle">seconds since the start of the demo</text>`)
  for (const pct of [0, 25, 50, 75, 100]) {
    push(`<line x1="${X0 - 5}" y1="${num(y(pct))}" x2="${X0}" y2="${num(y(pct))}" stroke="${COLORS.ink}"/>`)
    if (pct > 0) push(`<line x1="${X0}" y1="${num(y(pct))}" x2="${X1}" y2="${num(y(pct))}" stroke="${COLORS.grid}" stroke-width="0.6" stroke-dasharray="2 3"/>`)
    push(`<text x="${X0 - 9}" y="${num(y(pct) + 4.5)}" class="axis" text-anchor="end">${pct}%</text>`)
  }
  push(`<line x1="${X0}" y1="${RATE_TOP}" x2="${X0}" y2="${RATE_BOT}" stroke="${COLORS.ink}" stroke-width="1.2"/>`)
  push(`<text transform="translate(36 ${(RATE_TOP + RATE_BOT) / 2}) rotate(-90)" class="axis" text-anchor="middle">` +
    `failure rate (last ${tl.windowSize ?? 20} calls)</text>`)
  push(`<text x="${X0 - 10}" y="${CALLS_Y + 5}" class="axis" text-anchor="end">calls</text>`)
  push(`<line x1="${X0}" y1="${CALLS_Y}" x2="${X1}" y2="${CALLS_Y}" stroke="${COLORS.grid}" stroke-width="1"/>`)

  // --- threshold ------------------------------------------------------------------------
  push(`<line x1="${X0}" y1="${num(y(threshold))}" x2="${X1}" y2="${num(y(threshold))}" stroke="${COLORS.threshold}" ` +
    `stroke-width="1.8" stroke-dasharray="8 5"/>`)

  // --- failure-rate line (a step: the rate holds until the next call settles) ------------
  if (tl.calls.length) {
    let d = `M${num(x(0))},${num(y(0))}`
    for (const c of tl.calls) {
      const end = c.at + c.ms
      d += ` H${num(x(end))} V${num(y(c.failureRate))}`
    }
    d += ` H${num(x(durationMs))}`
    push(`<path d="${d}" fill="none" stroke="${COLORS.rate}" stroke-width="2.6" stroke-linejoin="round"/>`)
  }
  // threshold label, on a white chip so the line and bands do not swallow it
  const thrLabel = `open threshold ${threshold}%`
  const thrW = thrLabel.length * 7.4 + 12
  push(`<rect x="${num(X1 - thrW - 4)}" y="${num(y(threshold) - 24)}" width="${num(thrW)}" height="19" rx="3" fill="#fff" fill-opacity="0.9"/>`)
  push(`<text x="${num(X1 - 10)}" y="${num(y(threshold) - 10)}" class="small" text-anchor="end" fill="${COLORS.threshold}">${esc(thrLabel)}</text>`)

  // --- transitions: thin lines and what caused them ----------------------------------------
  for (const t of tl.transitions ?? []) {
    push(`<line x1="${num(x(t.at))}" y1="${PLOT_TOP}" x2="${num(x(t.at))}" y2="${RATE_BOT}" stroke="${BANDS[t.to]?.label ?? COLORS.ink}" ` +
      `stroke-width="1" stroke-opacity="0.55"><title>${esc(`${s1(t.at)} s: ${t.from} -> ${t.to}${t.reason ? ` (${t.reason})` : ''}`)}</title></line>`)
  }

  // ... and, in the (otherwise empty) top of the rate panel, what each change meant
  const noteFor = (t) => {
    if (t.to === 'OPEN' && t.from === 'CLOSED') {
      const last = [...tl.calls].reverse().find((c) => c.at <= t.at)
      return last ? `opens: ${last.windowFailures} of ${last.windowCalls} failed (${Math.round(last.failureRate)}%)` : 'opens'
    }
    if (t.to === 'OPEN') return 'open again'
    if (t.to === 'CLOSED') return 'closed: fresh window'
    return null
  }
  let lastNoteEnd = -Infinity
  let noteRow = 0
  for (const t of tl.transitions ?? []) {
    const note = noteFor(t)
    if (!note) continue
    const nw = note.length * 6.3 + 12
    const nx = x(t.at) + 6 + nw <= X1 ? x(t.at) + 6 : x(t.at) - 6 - nw // at the right edge: left of the line
    noteRow = nx < lastNoteEnd ? noteRow + 1 : 0 // stagger notes that would overlap
    lastNoteEnd = nx + nw
    const ny = RATE_TOP + 8 + (noteRow % 3) * 24
    push(`<rect x="${num(nx)}" y="${ny}" width="${num(nw)}" height="19" rx="3" fill="#fff" fill-opacity="0.85"/>`)
    push(`<text x="${num(nx + 5)}" y="${ny + 14}" class="small" fill="${BANDS[t.to]?.label ?? COLORS.ink}">${esc(note)}</text>`)
  }

  // --- call markers -----------------------------------------------------------------------
  for (const c of tl.calls) {
    const color = COLORS[c.outcome] ?? COLORS.ink
    const cx = x(c.at)
    const tip = `call ${c.n} at ${(c.at / 1000).toFixed(2)} s: ${c.probe ? 'probe, ' : ''}${OUTCOME_TEXT[c.outcome] ?? c.outcome}` +
      ` in ${c.ms < 1 ? c.ms.toFixed(2) : c.ms.toFixed(0)} ms${c.fallback ? ', answered from cache' : ''}; ` +
      `window ${c.windowFailures}/${c.windowCalls} failed (${Math.round(c.failureRate)}%)`
    // how long the call took, when that is visible at this scale (the timeouts)
    const w = x(c.at + c.ms) - cx
    if (w > 3) {
      push(`<line x1="${num(cx)}" y1="${CALLS_Y}" x2="${num(cx + w)}" y2="${CALLS_Y}" stroke="${color}" stroke-width="4" stroke-linecap="round" stroke-opacity="0.55"/>`)
    }
    if (c.probe) {
      const r = 9
      push(`<path d="M${num(cx)},${CALLS_Y - r} L${num(cx + r)},${CALLS_Y} L${num(cx)},${CALLS_Y + r} L${num(cx - r)},${CALLS_Y} Z" ` +
        `fill="${color}" stroke="${COLORS.ink}" stroke-width="1.6"><title>${esc(tip)}</title></path>`)
      push(`<text x="${num(cx)}" y="${CALLS_Y + 27}" class="small" text-anchor="middle" fill="${COLORS.ink}">` +
        `probe ${c.outcome === 'ok' ? 'ok' : c.outcome === 'timeout' ? 'timed out' : '503'}</text>`)
    } else if (c.outcome === 'rejected') {
      push(`<circle cx="${num(cx)}" cy="${CALLS_Y}" r="5" fill="#fff" stroke="${color}" stroke-width="2.4"><title>${esc(tip)}</title></circle>`)
    } else {
      push(`<circle cx="${num(cx)}" cy="${CALLS_Y}" r="6" fill="${color}" stroke="#fff" stroke-width="1"><title>${esc(tip)}</title></circle>`)
    }
  }

  // --- legend -----------------------------------------------------------------------------
  // three rows: a label on the left, then swatches with their text
  const row = (ly, title, items) => {
    push(`<text x="${X0 - 10}" y="${ly + 5}" class="legend strong" text-anchor="end">${esc(title)}</text>`)
    let l = X0
    for (const [svg, text, width] of items) {
      push(svg(l, ly))
      push(`<text x="${num(l + 22)}" y="${ly + 5}" class="legend">${esc(text)}</text>`)
      l += width
    }
  }
  const swatch = (state) => (l, ly) => `<rect x="${l}" y="${ly - 8}" width="16" height="16" fill="${BANDS[state].fill}" stroke="${BANDS[state].label}" stroke-width="0.8"/>`
  const LY = 600
  row(LY, 'calls', [
    [(l, ly) => `<circle cx="${l + 8}" cy="${ly}" r="6" fill="${COLORS.ok}"/>`, '200 OK from the API', 190],
    [(l, ly) => `<circle cx="${l + 8}" cy="${ly}" r="6" fill="${COLORS.failure}"/>`, 'failure: 503', 135],
    [(l, ly) => `<line x1="${l}" y1="${ly}" x2="${l + 14}" y2="${ly}" stroke="${COLORS.timeout}" stroke-width="4" stroke-opacity="0.55"/>` +
      `<circle cx="${l + 2}" cy="${ly}" r="6" fill="${COLORS.timeout}"/>`, `timeout (${tl.config?.timeout ?? '?'} ms, bar = wait)`, 240],
    [(l, ly) => `<circle cx="${l + 8}" cy="${ly}" r="5" fill="#fff" stroke="${COLORS.rejected}" stroke-width="2.4"/>`,
      'rejected fast, answered from cache', 280],
    [(l, ly) => `<path d="M${l + 8},${ly - 8} L${l + 16},${ly} L${l + 8},${ly + 8} L${l},${ly} Z" fill="#fff" stroke="${COLORS.ink}" stroke-width="1.6"/>`,
      'probe (colour = its outcome)', 220],
  ])
  row(LY + 32, 'state', [
    [swatch('CLOSED'), 'CLOSED: calls go to the API', 245],
    [swatch('OPEN'), `OPEN: rejected without touching the API for ${s1(tl.config?.resetTimeout ?? 0)} s`, 370],
    [swatch('HALF_OPEN'), 'HALF_OPEN: one probe let through', 280],
  ])
  row(LY + 64, 'lines', [
    [(l, ly) => `<line x1="${l}" y1="${ly}" x2="${l + 16}" y2="${ly}" stroke="${COLORS.rate}" stroke-width="2.6"/>`,
      `failure rate among the last ${tl.windowSize ?? 20} calls (opens at ≥ ${threshold}% once ${tl.minimumRequests ?? 5} calls are in)`, 560],
    [(l, ly) => `<line x1="${l}" y1="${ly}" x2="${l + 16}" y2="${ly}" stroke="${COLORS.threshold}" stroke-width="1.8" stroke-dasharray="5 3"/>`,
      'threshold', 120],
    [(l, ly) => `<rect x="${l}" y="${ly - 7}" width="16" height="14" fill="url(#hatch)" stroke="${COLORS.failure}" stroke-width="1"/>`,
      'API failing', 140],
  ])

  const svg = `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="breakwater demo timeline">
<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">` +
    `<rect width="6" height="6" fill="#fbe3df"/><line x1="0" y1="0" x2="0" y2="6" stroke="${COLORS.failure}" stroke-width="2"/></pattern></defs>
<rect width="${W}" height="${H}" fill="#fff"/>
${out.join('\n')}
</svg>`

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>breakwater demo report</title>
<style>
  html, body { margin: 0; padding: 0; background: #fff; }
  svg { display: block; width: 100%; height: auto; max-width: ${W}px; margin: 0 auto; }
  svg { fill: ${COLORS.ink}; }
  text { font-family: "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; }
  .title { font-size: 24px; font-weight: bold; }
  .sub { font-size: 15px; fill: ${COLORS.ink}; }
  .bad { fill: ${COLORS.failure}; font-weight: bold; }
  .axis { font-size: 13px; fill: ${COLORS.muted}; }
  .small { font-size: 12px; }
  .band { font-size: 13px; font-weight: bold; letter-spacing: 0.5px; }
  .legend { font-size: 13px; }
  .strong { font-weight: bold; fill: ${COLORS.muted}; }
</style>
</head>
<body>
${svg}
</body>
</html>
`
}

module.exports = { renderReport }
