'use strict'
// Bytes per breaker (PRODUCT.md, "Registry": a breaker per tenant or per host). A default
// breaker (time window, 30 s timeout) must stay small in the JS heap, created and after its
// first call: the figures users multiply by their number of tenants. Measured in a child
// (--expose-gc) after a warm-up; the bounds leave ~25 % over what it holds today (~0.65 KB
// created, ~0.86 KB after a call) and catch a return of older layouts (1.6 / 2.7 KB: fields
// outside the object, a copy of the options, four closures and a Set per breaker, settled
// timed calls holding their promise; then 1.5 KB after a call: a deadline queue, its Timeout
// and the last settled call per breaker).
const { test } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { runNode } = require('./helpers.js')

const CHILD = path.join(__dirname, 'fixtures', 'footprint.js')

test('a default breaker holds under 800 B of JS heap, and under 1.1 KB after its first call', async () => {
  const r = await runNode(['--expose-gc', CHILD, '5000'], { limitMs: 60_000 })
  assert.equal(r.code, 0, r.err)
  const { created, afterCall, live } = JSON.parse(r.out)
  assert.equal(live, 5000)
  assert.ok(created < 800, `${Math.round(created)} B per breaker created`)
  assert.ok(afterCall < 1100, `${Math.round(afterCall)} B per breaker after one call`)
})

const STATS_CHILD = path.join(__dirname, 'fixtures', 'stats-rss.js')

test('reading every circuit\'s stats one by one does not grow the process (~0.25 KB per circuit; 2 KB when each read made a native array)', async () => {
  const r = await runNode(['--expose-gc', STATS_CHILD, '10000'], { limitMs: 60_000 })
  assert.equal(r.code, 0, r.err)
  const { perCircuit, total } = JSON.parse(r.out)
  assert.equal(total, 30_000)
  assert.ok(perCircuit < 900, `${Math.round(perCircuit)} B of RSS per circuit after three rounds of getStats()`)
})

test('the JavaScript the package loads is ASCII (V8 holds a source with any wider character at two bytes per character for the life of the process: the entry took 232 KB instead of 116 KB)', () => {
  const fs = require('node:fs')
  const root = path.join(__dirname, '..')
  const files = ['index.js', 'esm.cjs']
  const walk = (dir) => {
    for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = `${dir}/${e.name}`
      if (e.isDirectory()) walk(rel)
      else if (/\.(c|m)?js$/.test(e.name)) files.push(rel)
    }
  }
  walk('lib')
  assert.ok(files.length > 30, `${files.length} files`)
  const wide = files.filter((f) => /[^\x00-\x7f]/.test(fs.readFileSync(path.join(root, f), 'utf8')))
  assert.deepEqual(wide, [])
})
