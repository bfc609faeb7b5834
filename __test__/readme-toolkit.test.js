'use strict'
// The README's sections on retry, decorators, presets and Lambda: every TypeScript example
// compiles as written under tsc --strict, in an app with breakwater, @middy/core and
// @types/aws-lambda installed. And "Trying it from a clone": `npm run pack:local`, then the
// recipe's commands run as written in an app next to the clone, give a working install.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { hostPlatform, npmCommand } = require('../scripts/stage-install.js')

const ROOT = path.join(__dirname, '..')
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')

/** The code blocks (of `lang`) of the README section `## <title>`. */
function blocks(title, lang) {
  const start = README.indexOf(`## ${title}\n`)
  assert.ok(start >= 0, `README has no "## ${title}" section`)
  const rest = README.slice(start + 3)
  const end = rest.search(/\n## /)
  const text = end < 0 ? rest : rest.slice(0, end)
  return [...text.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1])
}

let dir
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'breakwater-readme-'))
})
after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
})

test('the TypeScript examples of Retry, Decorators, Presets and Lambda compile under tsc --strict', { skip: !fs.existsSync(TSC) && 'typescript not installed', timeout: 120_000 }, () => {
  const app = path.join(dir, 'ts-app')
  fs.mkdirSync(path.join(app, 'node_modules', '@types'), { recursive: true })
  fs.symlinkSync(ROOT, path.join(app, 'node_modules', 'breakwater'), 'dir')
  fs.symlinkSync(path.join(ROOT, 'node_modules', '@middy'), path.join(app, 'node_modules', '@middy'), 'dir')
  for (const t of ['node', 'aws-lambda']) fs.symlinkSync(path.join(ROOT, 'node_modules', '@types', t), path.join(app, 'node_modules', '@types', t), 'dir')
  const files = []
  for (const title of ['Retry', 'Decorators', 'Presets', 'Lambda: `withCircuitBreaker` and Middy']) {
    const found = blocks(title, 'ts')
    assert.ok(found.length > 0, `no ts example in "${title}"`)
    found.forEach((code, i) => {
      const f = `${title.replace(/\W+/g, '-')}-${i}.mts`
      fs.writeFileSync(path.join(app, f), code)
      files.push(f)
    })
  }
  assert.ok(files.length >= 5)
  const r = spawnSync(process.execPath, [TSC, '--strict', '--noEmit', '--target', 'es2022', '--module', 'nodenext',
    '--moduleResolution', 'nodenext', '--skipLibCheck', 'false', ...files], { cwd: app, encoding: 'utf8' })
  assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`)
})

test('Trying it from a clone: npm run pack:local, then the recipe installs a working breakwater', { timeout: 300_000 }, (t) => {
  const plat = hostPlatform()
  const [recipe] = blocks('Trying it from a clone', 'sh').filter((b) => b.includes('npm pkg set'))
  assert.ok(recipe, 'the recipe block')
  if (!recipe.includes(`breakwater-${plat}`)) return t.skip(`the README's recipe is written for linux-x64-gnu, this is ${plat}`)
  const [cmd, pre] = npmCommand()
  const packed = spawnSync(cmd, [...pre, 'run', '--silent', 'pack:local'], { cwd: ROOT, encoding: 'utf8', timeout: 240_000 })
  assert.equal(packed.status, 0, `pack:local failed:\n${packed.stdout}${packed.stderr}`)
  // What pack:local printed is the README's recipe, for a clone at ../breakwater.
  const printed = packed.stdout.trim().split('\n').map((l) => l.split(path.join(ROOT, 'packed')).join('../breakwater/packed'))
  assert.deepEqual(printed, recipe.trim().split('\n'))

  // An app next to a clone called breakwater; the recipe's lines, run as written.
  fs.symlinkSync(ROOT, path.join(dir, 'breakwater'), 'dir')
  const app = path.join(dir, 'my-app')
  fs.mkdirSync(app)
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'my-app', version: '1.0.0', private: true }))
  for (const line of recipe.trim().split('\n')) {
    const [tool, ...args] = line.split(' ')
    assert.equal(tool, 'npm')
    const r = spawnSync(cmd, [...pre, ...args, '--no-audit', '--no-fund'], { cwd: app, encoding: 'utf8', timeout: 120_000 })
    assert.equal(r.status, 0, `${line} failed:\n${r.stdout}${r.stderr}`)
  }
  const installed = fs.readdirSync(path.join(app, 'node_modules')).filter((n) => n.startsWith('breakwater')).sort()
  assert.deepEqual(installed, ['breakwater', `breakwater-${plat}`])
  assert.ok(!fs.lstatSync(path.join(app, 'node_modules', 'breakwater')).isSymbolicLink(), 'installed from the tarball, not linked to the clone')
  const r = spawnSync(process.execPath, ['-e', `
    const { CircuitBreaker, retry, presets } = require('breakwater')
    const { circuitBreakerMiddleware } = require('breakwater/middy')
    const b = new CircuitBreaker({ ...presets.cache, name: 'x', logger: null })
    retry(() => b.execute(() => 'ok')).then((v) => {
      const binary = Object.keys(require.cache).find((f) => f.endsWith('.node'))
      console.log(JSON.stringify({ v, mw: typeof circuitBreakerMiddleware, binary: binary.includes('breakwater-${plat}') }))
    })
  `], { cwd: app, encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  assert.deepEqual(JSON.parse(r.stdout), { v: 'ok', mw: 'function', binary: true })
})
