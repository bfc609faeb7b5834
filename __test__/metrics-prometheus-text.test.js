'use strict'
// toPrometheus() writes its text straight from the circuits (it is fast at 10,000 circuits);
// the prom-client bridge builds sample objects. Both must expose the same samples.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const { CircuitBreaker, toPrometheus, registerPrometheusMetrics } = require('../index.js')
const { uniq, failN, okN } = require('./helpers.js')
const { requireTool } = require('./helpers/tools.js')

/** Sample lines of a text exposition, without comments, sorted. */
const samples = (text) => text.split('\n').filter((l) => l && !l.startsWith('#')).sort()

test('toPrometheus() and the prom-client bridge expose the same samples, names escaped alike', async (t) => {
  const client = require('prom-client')
  const registry = new client.Registry()
  const unregister = registerPrometheusMetrics(registry)
  const tag = uniq('agree')
  const breakers = [`${tag}-plain`, `${tag}-"quoted"\\back\nslash-ü`, `${tag}-open`, `${tag}-half`].map((name) =>
    new CircuitBreaker({ name, logger: null, minimumRequests: 2 }))
  for (const b of breakers) {
    await okN(b, 3)
    await failN(b, 1)
  }
  breakers[2].open()
  breakers[3].open()
  breakers[3].halfOpen()
  try {
    const mine = samples(toPrometheus()).filter((l) => l.includes(tag))
    const theirs = samples(await registry.metrics()).filter((l) => l.includes(tag))
    assert.equal(mine.length, breakers.length * 32)
    assert.deepEqual(mine, theirs)
    assert.ok(mine.includes(`circuit_breaker_state{name="${tag}-\\"quoted\\"\\\\back\\nslash-ü"} 0`))
    if (requireTool(t, 'promtool')) {
      const r = spawnSync('promtool', ['check', 'metrics'], { input: toPrometheus(), encoding: 'utf8' })
      assert.equal(r.status, 0, `${r.stdout}${r.stderr}`)
    }
  } finally {
    unregister()
    for (const b of breakers) b.dispose()
  }
})
