'use strict'
// Per-name memory (PRODUCT.md, "Registry"): a breaker per tenant or per host, created, used,
// disposed and collected over days, must not grow the process. A child (--expose-gc) churns
// through 100,000 distinct names, with metrics reads on the way; what it holds after the
// first 20,000 and after all 100,000 must be the same, give or take noise. Before the fix,
// 80,000 more names left ~13 MB more heap (byName and the name cache kept every name) and
// ~25 MB more RSS.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { runNode } = require('../helpers.js')

const CHILD = path.join(__dirname, '..', 'fixtures', 'name-churn.js')
const MB = 1024 * 1024

test('100,000 names created, used and disposed leave nothing per name behind (JS heap and RSS)', async () => {
  const r = await runNode(['--expose-gc', CHILD, '20000', '100000'], { limitMs: 120_000 })
  assert.equal(r.code, 0, r.err)
  const { warm, end, live } = JSON.parse(r.out)
  assert.equal(live, 0, 'disposed circuits are still registered')
  const heap = (end.heap - warm.heap) / MB
  const rss = (end.rss - warm.rss) / MB
  // 80,000 names at even 25 bytes each would be 2 MB
  assert.ok(heap < 2, `heap grew ${heap.toFixed(1)} MB over 80,000 names`)
  // RSS is noisier (allocator, JIT); a native leak of a circuit (its window, histogram and
  // log: kilobytes) would be hundreds of MB
  assert.ok(rss < 20, `RSS grew ${rss.toFixed(1)} MB over 80,000 names`)
})
