#!/usr/bin/env node
'use strict'
// `npm run pack:local`: breakwater as npm tarballs, for trying it from a clone before (or
// without) a publish. Builds the addon for this machine when the Rust sources are newer than
// it (needs Rust then), packs the root package and this machine's platform package into
// packed/, and prints the commands that install them into an app (README: "Trying it from a
// clone"). The app's `overrides` entry points the platform package's name at its tarball, so
// npm takes it as the root package's optional dependency, exactly as from the registry.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const { packAll, hostPlatform, newestSource, npmCommand } = require('./stage-install.js')

const ROOT = path.join(__dirname, '..')
const OUT = path.join(ROOT, 'packed')
const { name: PKG, napi } = require(path.join(ROOT, 'package.json'))

const plat = hostPlatform()
const binary = path.join(ROOT, `${napi.binaryName}.${plat}.node`)
if (!fs.existsSync(binary) || !fs.existsSync(path.join(ROOT, 'binding.js')) || fs.statSync(binary).mtimeMs < newestSource()) {
  console.error(`pack:local: building the addon for ${plat}`)
  const [cmd, pre] = npmCommand()
  execFileSync(cmd, [...pre, 'run', 'build'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] })
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'breakwater-pack-'))
try {
  const packs = packAll(work)
  const host = packs.platforms[plat]
  if (!host || host.stale) throw new Error(`no fresh ${plat} binary was packed (${host ? host.source : 'none found'})`)
  fs.rmSync(OUT, { recursive: true, force: true })
  fs.mkdirSync(OUT)
  for (const t of [packs.root, host.tarball]) fs.copyFileSync(t, path.join(OUT, path.basename(t)))
  const rel = (t) => path.join(OUT, path.basename(t))
  console.error(`pack:local: wrote ${path.basename(packs.root)} and ${path.basename(host.tarball)} to packed/. In your app:`)
  console.log(`npm pkg set overrides.${PKG}-${plat}=file:${rel(host.tarball)}`)
  console.log(`npm install ${rel(packs.root)}`)
} finally {
  fs.rmSync(work, { recursive: true, force: true })
}
