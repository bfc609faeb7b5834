'use strict'
// Issue 14's scale row, in a process of its own (spawned by bench.js):
//
//   node --expose-gc benchmark/scale.js <circuits> <reps>
//
// <circuits> breakers with default options and some traffic each; then `toPrometheus()`
// against prom-client's `registry.metrics()` holding the same families and label sets (read
// off breakwater's own exposition, so the two cannot drift apart), timed per exposed line,
// interleaved, medians. `toPrometheus()` is synchronous: its duration is how long it blocks
// the event loop. Prints one line, RESULT <json>.

const { loadLibs, firstLine } = require('./targets')

const hr = () => process.hrtime.bigint()
const ms = (t0) => Number(hr() - t0) / 1e6
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2 }
const settle = async () => { for (let i = 0; i < 2; i++) { await new Promise(setImmediate); global.gc() } }

/** Families of a text exposition: name → { type, help, samples: [{ suffix, labels, value }] }. */
function parseExposition (text) {
  const fams = new Map()
  let cur = null
  for (const line of text.split('\n')) {
    if (!line) continue
    let m = line.match(/^# HELP (\S+) (.*)$/)
    if (m) { cur = { name: m[1], help: m[2], type: null, samples: [] }; fams.set(m[1], cur); continue }
    m = line.match(/^# TYPE (\S+) (\S+)$/)
    if (m) { fams.get(m[1]).type = m[2]; continue }
    m = line.match(/^(\w+)\{(.*)\} (\S+)$/)
    if (!m || !cur) throw new Error(`unexpected exposition line: ${line.slice(0, 120)}`)
    const labels = {}
    for (const [, k, v] of m[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v.replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c))
    cur.samples.push({ suffix: m[1].slice(cur.name.length), labels, value: Number(m[3]) })
  }
  return [...fams.values()]
}

/** A prom-client Registry with the same families, label sets and (for histograms) buckets. */
function promClientMirror (promClient, fams) {
  const registry = new promClient.Registry()
  for (const f of fams) {
    const labelNames = [...new Set(f.samples.flatMap((s) => Object.keys(s.labels)))].filter((k) => k !== 'le')
    if (f.type === 'histogram') {
      const buckets = [...new Set(f.samples.filter((s) => s.labels.le && s.labels.le !== '+Inf').map((s) => Number(s.labels.le)))]
      const h = new promClient.Histogram({ name: f.name, help: f.help, labelNames, buckets, registers: [registry] })
      for (const s of f.samples) if (s.suffix === '_count') h.observe(s.labels, 0.01)
    } else if (f.type === 'counter') {
      const c = new promClient.Counter({ name: f.name.replace(/_total$/, ''), help: f.help, labelNames, registers: [registry] })
      for (const s of f.samples) c.inc(s.labels, s.value)
    } else {
      const g = new promClient.Gauge({ name: f.name, help: f.help, labelNames, registers: [registry] })
      for (const s of f.samples) g.set(s.labels, s.value)
    }
  }
  return registry
}

const sampleLines = (text) => text.split('\n').filter((l) => l && l[0] !== '#').length

async function main () {
  const [circuits, reps] = process.argv.slice(2).map(Number)
  const libs = await loadLibs()
  if (!libs.breakwater) throw new Error(`breakwater unavailable: ${libs.breakwaterError}`)
  const { CircuitBreaker, toPrometheus } = libs.breakwater
  const promClient = require('prom-client')

  // default options, and traffic: 3 successes and a failure each
  const ok = async () => 1
  const boom = async () => { throw new Error('boom') }
  const breakers = []
  for (let i = 0; i < circuits; i++) breakers.push(new CircuitBreaker({ name: `svc-${i}`, logger: null }))
  for (const b of breakers) {
    for (let k = 0; k < 3; k++) await b.execute(ok)
    try { await b.execute(boom) } catch {}
  }

  let t0 = hr()
  let text = toPrometheus()
  const firstMs = ms(t0)
  const registry = promClientMirror(promClient, parseExposition(text))
  let pcText = await registry.metrics()
  const lines = sampleLines(text)
  const pcLines = sampleLines(pcText)
  const problems = []
  if (lines !== pcLines) problems.push(`toPrometheus() exposed ${lines} sample lines, the prom-client mirror ${pcLines}`)
  if (!text.includes(`circuit_breaker_state{name="svc-${circuits - 1}"} 0`)) problems.push(`circuit "svc-${circuits - 1}" missing from toPrometheus()`)

  const bw = []
  const pc = []
  for (let r = 0; r < reps; r++) {
    text = pcText = null
    await settle()
    const order = r % 2 ? ['pc', 'bw'] : ['bw', 'pc']
    for (const which of order) {
      t0 = hr()
      if (which === 'bw') { text = toPrometheus(); bw.push(ms(t0)) } else { pcText = await registry.metrics(); pc.push(ms(t0)) }
    }
  }
  for (const b of breakers) b.dispose()
  return {
    circuits,
    reps,
    lines,
    pcLines,
    firstMs,
    bwMs: bw,
    pcMs: pc,
    bwMedianMs: median(bw),
    pcMedianMs: median(pc),
    bwMaxMs: Math.max(...bw, firstMs),
    problems
  }
}

main().then(
  (r) => process.stdout.write('RESULT ' + JSON.stringify(r) + '\n'),
  (err) => { process.stdout.write('RESULT ' + JSON.stringify({ error: firstLine(err) }) + '\n'); process.exitCode = 1 }
)
