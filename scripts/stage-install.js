#!/usr/bin/env node
'use strict'
// Installs breakwater the way a user gets it, from local tarballs instead of the registry:
// `npm pack` of the root package and of the platform packages under npm/, then a real
// `npm install breakwater` in an empty app directory. The root package's optionalDependencies
// name the platform packages; an `overrides` entry per platform points each name at its
// local tarball, so npm itself picks the one matching os/cpu/libc (or the --platform asked
// for, through npm_config_os / npm_config_cpu / npm_config_libc, exactly as a user
// installing for Lambda from another machine would).
//
//   node scripts/stage-install.js <dir> [--platform linux-arm64-gnu]
//
// Prints the installed package directory (<dir>/app/node_modules/breakwater). Needs
// binding.js (npm run build) and the platform binary in npm/<platform>/ (npm run build:dist);
// for the host's own platform the development build (./breakwater.<platform>.node) is used
// when it is newer, unless BREAKWATER_STAGE_FROM=dist. A binary older than the Rust sources
// is refused unless BREAKWATER_ALLOW_STALE=1. Works offline: nothing is fetched.

const fs = require('node:fs')
const path = require('node:path')
const { execFileSync } = require('node:child_process')

const ROOT = path.join(__dirname, '..')
const rootPkg = require(path.join(ROOT, 'package.json'))
const BIN = rootPkg.napi.binaryName

/** npm's own CLI, so npm runs under the same node binary and with whatever PATH we give it. */
function npmCommand() {
  const nodeDir = path.dirname(fs.realpathSync(process.execPath))
  const candidates = [
    process.env.npm_execpath && /npm-cli\.js$/.test(process.env.npm_execpath) ? process.env.npm_execpath : null,
    path.join(nodeDir, '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js'), // unix layout
    path.join(nodeDir, 'node_modules', 'npm', 'bin', 'npm-cli.js'), // windows layout
  ]
  const cli = candidates.find((c) => c && fs.existsSync(c))
  if (cli) return [process.execPath, [cli]]
  return ['npm', []]
}

function npm(args, opts = {}) {
  const [cmd, pre] = npmCommand()
  return execFileSync(cmd, [...pre, ...args, '--no-audit', '--no-fund', '--loglevel=error'], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts,
    env: { ...process.env, npm_config_update_notifier: 'false', ...opts.env },
  })
}

/** The platform id napi-rs uses for this process (linux-x64-gnu, darwin-arm64, ...). */
function hostPlatform() {
  const { platform, arch } = process
  if (platform === 'linux') {
    const glibc = process.report && process.report.getReport().header.glibcVersionRuntime
    return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`
  }
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

/** The newest modification time of the Rust sources a binary is built from. */
function newestSource() {
  let newest = 0
  const walk = (p) => {
    const st = fs.statSync(p)
    if (st.isDirectory()) for (const f of fs.readdirSync(p)) { if (f !== 'target') walk(path.join(p, f)) }
    else newest = Math.max(newest, st.mtimeMs)
  }
  for (const p of ['src', 'crates', 'Cargo.toml', 'Cargo.lock', 'build.rs']) if (fs.existsSync(path.join(ROOT, p))) walk(path.join(ROOT, p))
  return newest
}

/** Packs the root package and every platform package that has a binary; returns the tarballs. */
function packAll(dir) {
  const tarballs = path.join(dir, 'tarballs')
  fs.mkdirSync(tarballs, { recursive: true })
  if (!fs.existsSync(path.join(ROOT, 'binding.js'))) throw new Error('binding.js is missing: run `npm run build` first')
  const packed = JSON.parse(npm(['pack', '--json', '--pack-destination', tarballs], { cwd: ROOT }))[0]
  const result = { root: path.join(tarballs, packed.filename), rootFiles: packed.files.map((f) => f.path), platforms: {} }
  const sourcesAt = newestSource()
  for (const plat of fs.readdirSync(path.join(ROOT, 'npm'))) {
    const src = path.join(ROOT, 'npm', plat)
    const node = `${BIN}.${plat}.node`
    // the platform package's own binary (npm run build:dist) or, for this machine's platform,
    // the development build (npm run build): whichever is newer
    const candidates = [[path.join(src, node), `npm/${plat}/${node}`]]
    if (plat === hostPlatform() && process.env.BREAKWATER_STAGE_FROM !== 'dist') candidates.push([path.join(ROOT, node), `${node} (development build)`])
    const found = candidates.filter(([f]) => fs.existsSync(f)).map(([f, label]) => [f, label, fs.statSync(f).mtimeMs])
    if (found.length === 0) continue
    const [binary, label, builtAt] = found.sort((a, b) => b[2] - a[2])[0]
    const stale = builtAt < sourcesAt
    const source = stale ? `${label}, STALE: older than the Rust sources` : label
    const stage = path.join(dir, 'stage', plat)
    fs.mkdirSync(stage, { recursive: true })
    for (const f of fs.readdirSync(src)) if (!f.endsWith('.node')) fs.copyFileSync(path.join(src, f), path.join(stage, f))
    fs.copyFileSync(binary, path.join(stage, node))
    const p = JSON.parse(npm(['pack', '--json', '--pack-destination', tarballs], { cwd: stage }))[0]
    result.platforms[plat] = { tarball: path.join(tarballs, p.filename), files: p.files.map((f) => f.path), source, stale }
  }
  return result
}

/**
 * Packs and installs into <dir>/app. `platform` (default: the host's) selects os/cpu/libc for
 * npm; `env` is the environment npm runs with (e.g. a PATH without Rust).
 */
function stageInstall(dir, { platform, env } = {}) {
  const packs = packAll(dir)
  const app = path.join(dir, 'app')
  fs.mkdirSync(app, { recursive: true })
  const overrides = {}
  const rel = (f) => path.relative(app, f).split(path.sep).join('/')
  for (const [plat, p] of Object.entries(packs.platforms)) overrides[`${BIN}-${plat}`] = `file:${rel(p.tarball)}`
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({
    name: 'breakwater-consumer', version: '1.0.0', private: true,
    dependencies: { breakwater: `file:${rel(packs.root)}` },
    overrides,
  }, null, 2))
  const npmEnv = { ...env }
  if (platform) {
    const [os, cpu, libc] = platform.split('-')
    Object.assign(npmEnv, { npm_config_os: os, npm_config_cpu: cpu })
    if (os === 'linux') npmEnv.npm_config_libc = libc === 'musl' ? 'musl' : 'glibc'
  }
  const started = Date.now()
  npm(['install', '--offline'], { cwd: app, env: npmEnv })
  const installed = fs.readdirSync(path.join(app, 'node_modules')).filter((n) => n.startsWith(BIN))
  return { app, pkgDir: path.join(app, 'node_modules', 'breakwater'), installed, packs, installMs: Date.now() - started }
}

module.exports = { stageInstall, packAll, hostPlatform, npm, npmCommand, newestSource }

if (require.main === module) {
  const args = process.argv.slice(2)
  const i = args.indexOf('--platform')
  const platform = i >= 0 ? args.splice(i, 2)[1] : undefined
  const dir = path.resolve(args[0] || fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'breakwater-stage-')))
  const r = stageInstall(dir, { platform })
  const want = `${BIN}-${platform || hostPlatform()}`
  const packed = r.packs.platforms[platform || hostPlatform()]
  console.error(`stage-install: npm installed ${r.installed.join(', ')} in ${r.installMs} ms (${want}: ${packed ? packed.source : 'no binary packed'})`)
  if (packed && packed.stale && !process.env.BREAKWATER_ALLOW_STALE) {
    console.error(`stage-install: the ${want} binary is older than the Rust sources: run npm run build:dist (or set BREAKWATER_ALLOW_STALE=1)`)
    process.exit(1)
  }
  if (!r.installed.includes(want)) {
    console.error(`stage-install: ${want} was not installed`)
    process.exit(1)
  }
  console.log(r.pkgDir)
}
