'use strict'
// No timers per breaker: a process with breakers (open, forced open, half-open, with calls
// pending under a long timeout) exits by itself.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { runNode } = require('./helpers.js')

const FIXTURE = path.join(__dirname, 'fixtures', 'exit-child.js')

function runChild(mode, limitMs = 5_000) {
  return runNode([FIXTURE, mode], { limitMs })
}

for (const mode of ['settled', 'timedout', 'pending', 'worker', 'all']) {
  test(`a process with breakers exits by itself (${mode})`, async () => {
    const r = await runChild(mode)
    assert.equal(r.signal, null, `killed after ${r.ms} ms: it did not exit by itself. stderr: ${r.err}`)
    assert.equal(r.code, 0, r.err)
    assert.equal(r.out, 'done\n')
    assert.ok(r.ms < 4_000, `took ${r.ms} ms`)
  })
}
