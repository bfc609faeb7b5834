'use strict'
// The TypeScript types: a fixture that uses the public API compiles with --strict, and the
// lines marked @ts-expect-error do not (so the types are neither missing nor too loose).
const { test } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const fs = require('node:fs')
const { spawnSync } = require('node:child_process')

const ROOT = path.join(__dirname, '..')
const TSC = path.join(ROOT, 'node_modules', '.bin', 'tsc')
const FIXTURE = path.join(__dirname, 'fixtures', 'usage.ts')

test('index.d.ts exists and is the package types entry', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
  assert.ok(fs.existsSync(path.join(ROOT, pkg.types)), `${pkg.types} missing`)
  assert.equal(pkg.exports['.'].types, './index.d.ts')
})

test('tsc --strict --noEmit accepts the usage fixture', { skip: !fs.existsSync(TSC) && 'typescript not installed', timeout: 60_000 }, () => {
  const r = spawnSync(TSC, [
    '--strict', '--noEmit', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022',
    '--types', 'node', '--skipLibCheck', 'false', FIXTURE,
  ], { cwd: ROOT, encoding: 'utf8' })
  assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`)
})
