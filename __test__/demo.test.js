'use strict'
// The demo tells its story (and exits 0 only if it happened), and draws it: a self-contained
// HTML report with inline SVG, nothing fetched from anywhere.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { renderReport } = require('../demo/report')
const { runNode } = require('./helpers.js')

const ROOT = path.join(__dirname, '..')
const DEMO = path.join(ROOT, 'demo', 'demo.js')

function runDemo(args, limitMs = 60_000) {
  return runNode([DEMO, ...args], { cwd: ROOT, limitMs })
}

// What "self-contained" means for the report: it can be opened offline and shows everything.
function assertSelfContained(html) {
  assert.match(html, /^<!doctype html>/i)
  assert.match(html, /<svg[\s>]/)
  assert.doesNotMatch(html, /\b(?:src|href|xlink:href)\s*=\s*["']?\s*(?:https?:)?\/\//i, 'no external src/href')
  assert.doesNotMatch(html, /url\(\s*["']?\s*(?:https?:)?\/\//i, 'no external url() in CSS')
  assert.doesNotMatch(html, /@import/i)
  assert.doesNotMatch(html, /<script\b[^>]*\bsrc\s*=/i, 'no <script src>')
  assert.doesNotMatch(html, /<script\b/i, 'the report needs no scripts')
  assert.doesNotMatch(html, /NaN|undefined|Infinity/, 'every number was drawn')
}

test('the demo tells its story and writes a self-contained HTML report (--fast --report)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'breakwater-demo-'))
  const report = path.join(dir, 'report.html')
  try {
    const r = await runDemo(['--fast', '--report', report])
    assert.equal(r.signal, null, `the demo was killed. stdout:\n${r.out}\nstderr:\n${r.err}`)
    assert.equal(r.code, 0, `the story did not happen. stdout:\n${r.out}\nstderr:\n${r.err}`)
    assert.match(r.out, /the story happened as told/)
    assert.ok(r.out.includes(`report: ${report}`), 'prints where the report went')

    const html = fs.readFileSync(report, 'utf8')
    assertSelfContained(html)
    // The state bands: the circuit was CLOSED, went OPEN, probed while HALF_OPEN, closed again.
    assert.match(html, />CLOSED</, 'a CLOSED band label')
    assert.match(html, />OPEN(?::[^<]*)?</, 'an OPEN band label')
    for (const state of ['CLOSED', 'OPEN', 'HALF_OPEN']) {
      assert.match(html, new RegExp(`<title>${state} from [0-9.]+ s to [0-9.]+ s</title>`), `a ${state} band`)
    }
    // The call markers (one tooltip per call), the failure-rate line, the threshold, a legend.
    const calls = html.match(/<title>call \d+ at /g) ?? []
    assert.ok(calls.length >= 20, `call markers: ${calls.length}`)
    assert.match(html, /rejected fast \(circuit open\)/)
    assert.match(html, /timed out/)
    assert.match(html, /open threshold 50%/)
    assert.match(html, /failure rate among the last 20 calls/)
    assert.match(html, /Final state: CLOSED\./)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('--report without a path is a usage error', async () => {
  const r = await runDemo(['--fast', '--report'], 10_000)
  assert.equal(r.code, 2)
  assert.match(r.err, /usage: .*--report <path>/)
})

test('renderReport draws a minimal timeline, escaping what it prints', () => {
  const html = renderReport({
    durationMs: 1000,
    threshold: 0.5,
    windowSize: 20,
    calls: [
      { n: 1, at: 0, ms: 2, outcome: 'ok', probe: false, fallback: false, status: 200, failureRate: 0, windowCalls: 1, windowFailures: 0 },
      { n: 2, at: 100, ms: 3, outcome: 'failure', probe: false, fallback: true, status: 503, failureRate: 50, windowCalls: 2, windowFailures: 1 },
      { n: 3, at: 200, ms: 0.1, outcome: 'rejected', probe: false, fallback: true, status: null, failureRate: 50, windowCalls: 2, windowFailures: 1 },
      { n: 4, at: 600, ms: 150, outcome: 'timeout', probe: true, fallback: true, status: null, failureRate: 66.7, windowCalls: 3, windowFailures: 2 },
    ],
    transitions: [
      { at: 103, from: 'CLOSED', to: 'OPEN', reason: '<failureRate & "more">' },
      { at: 600, from: 'OPEN', to: 'HALF_OPEN', reason: null },
      { at: 750, from: 'HALF_OPEN', to: 'OPEN', reason: 'probeFailed' },
    ],
    phases: [{ from: 0, to: 50, phase: 'healthy' }, { from: 50, to: 1000, phase: 'failing' }],
    stats: { state: 'OPEN' },
    apiRequests: { CLOSED: 2, HALF_OPEN: 1, OPEN: 0 },
    storyOk: false,
    config: { timeout: 150, resetTimeout: 500 },
  })
  assertSelfContained(html)
  assert.ok(html.includes('&lt;failureRate &amp; &quot;more&quot;&gt;'))
  assert.ok(!html.includes('<failureRate'))
  assert.match(html, /<title>HALF_OPEN from 0\.6 s to 0\.8 s<\/title>/)
  assert.match(html, /probe timed out/)
  assert.match(html, /STORY CHECKS FAILED/)
  assert.match(html, /Final state: OPEN\./)
})
