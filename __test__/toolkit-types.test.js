'use strict'
// The toolkit's types under tsc --strict, for an ESM and a CommonJS TypeScript consumer:
// retry, RetryExhaustedError, presets, execute/wrap with { retry }, and the decorators' and
// the Middy middleware's entry points. (The Lambda types: lambda.test.js.)
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const ROOT = path.join(__dirname, '..')
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')

for (const fixture of ['toolkit.mts', 'toolkit-cjs.cts']) {
  test(`tsc --strict accepts ${fixture}`, { skip: !fs.existsSync(TSC) && 'typescript not installed', timeout: 120_000 }, () => {
    const r = spawnSync(process.execPath, [TSC, '--strict', '--noEmit', '--module', 'nodenext', '--moduleResolution', 'nodenext',
      '--target', 'es2022', '--types', 'node', '--skipLibCheck', 'false', path.join(__dirname, 'fixtures', fixture)], { cwd: ROOT, encoding: 'utf8' })
    assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`)
  })
}
