'use strict'
// A local stand-in for what a Lambda function meets when it is deployed, for the layout tests:
// - an npm registry on 127.0.0.1 that serves breakwater and its platform package from the
//   packed tarballs, so the README's `npm install ... breakwater` commands run as written;
// - a "runtime" folder outside the task root with its own copy of @aws-sdk/client-cloudwatch
//   reachable through NODE_PATH, as the Node runtimes of Lambda ship the SDK; and a bootstrap
//   that loads `index.js` from LAMBDA_TASK_ROOT with the task root as working directory and
//   calls `handler(event, context)` for each event, as the runtime does. Not a test file.

const fs = require('node:fs')
const path = require('node:path')
const http = require('node:http')
const crypto = require('node:crypto')
const { execFile } = require('node:child_process')

const ROOT = path.join(__dirname, '..', '..')

/**
 * Serves the packuments and tarballs of `packs` (scripts/stage-install.js packAll); any other
 * package is a 404 (npm skips an optional dependency it cannot fetch).
 * @returns {Promise<{ url: string, close(): Promise<void> }>}
 */
async function localRegistry(packs) {
  const entries = [[require(path.join(ROOT, 'package.json')), packs.root]]
  for (const [plat, p] of Object.entries(packs.platforms)) entries.push([require(path.join(ROOT, 'npm', plat, 'package.json')), p.tarball])
  const byName = new Map()
  const files = new Map()
  const server = http.createServer((req, res) => {
    const name = decodeURIComponent(req.url.slice(1))
    if (byName.has(name)) return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(byName.get(name)))
    if (files.has(req.url)) return res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(fs.readFileSync(files.get(req.url)))
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}')
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${server.address().port}`
  for (const [manifest, tarball] of entries) {
    const { name, version } = manifest
    const data = fs.readFileSync(tarball)
    const file = `/-/${name}-${version}.tgz`
    files.set(file, tarball)
    const { devDependencies, scripts, ...published } = manifest
    byName.set(name, {
      name,
      'dist-tags': { latest: version },
      versions: {
        [version]: {
          ...published,
          _id: `${name}@${version}`,
          dist: {
            tarball: url + file,
            shasum: crypto.createHash('sha1').update(data).digest('hex'),
            integrity: `sha512-${crypto.createHash('sha512').update(data).digest('base64')}`,
          },
        },
      },
    })
  }
  return { url, close: () => new Promise((resolve) => server.close(resolve)) }
}

/** The environment npm runs with against the local registry (a fresh cache: same version, new tarballs). */
function npmEnv(registry, dir) {
  return {
    npm_config_registry: `${registry.url}/`,
    npm_config_cache: path.join(dir, 'npm-cache'),
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
    npm_config_loglevel: 'error',
  }
}

const BOOTSTRAP = `'use strict'
// Loads the function like the Lambda Node runtime: index.handler from LAMBDA_TASK_ROOT.
const path = require('node:path')
const events = JSON.parse(process.argv[2])
;(async () => {
  const { handler } = require(path.join(process.env.LAMBDA_TASK_ROOT, 'index.js'))
  for (const event of events) {
    const result = await handler(event, { getRemainingTimeInMillis: () => 10_000 })
    process.stdout.write('RESULT ' + JSON.stringify(result) + '\\n')
  }
})().catch((err) => { console.error(err); process.exit(1) })
`

/**
 * Makes `<dir>/runtime`: the bootstrap, and node_modules/@aws-sdk/client-cloudwatch as one
 * bundled file (a copy of its own, like the runtime's SDK, not the one in a handler's bundle).
 */
async function makeRuntime(dir) {
  const { build } = require('esbuild')
  const runtime = path.join(dir, 'runtime')
  const sdk = path.join(runtime, 'node_modules', '@aws-sdk', 'client-cloudwatch')
  fs.mkdirSync(sdk, { recursive: true })
  await build({
    entryPoints: [require.resolve('@aws-sdk/client-cloudwatch')],
    bundle: true, platform: 'node', target: 'node20', format: 'cjs', outfile: path.join(sdk, 'index.js'), logLevel: 'error',
  })
  fs.writeFileSync(path.join(sdk, 'package.json'), JSON.stringify({ name: '@aws-sdk/client-cloudwatch', version: '3.0.0-runtime', main: 'index.js' }))
  fs.writeFileSync(path.join(runtime, 'bootstrap.cjs'), BOOTSTRAP)
  return { dir: runtime, nodePath: path.join(runtime, 'node_modules'), bootstrap: path.join(runtime, 'bootstrap.cjs') }
}

/**
 * Invokes the function in `taskRoot` once per event in a fresh process (one warm environment).
 * `env` is all the function sees besides PATH and HOME: AWS_REGION, endpoints, credentials.
 * @returns {Promise<{ results: unknown[], stdout: string, stderr: string }>}
 */
function invoke(runtime, taskRoot, events, env) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [runtime.bootstrap, JSON.stringify(events)], {
      cwd: taskRoot,
      timeout: 60_000,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, LAMBDA_TASK_ROOT: taskRoot, NODE_PATH: runtime.nodePath, ...env },
    }, (err, stdout, stderr) => {
      if (err) return reject(Object.assign(err, { message: `${err.message}\n${stdout}\n${stderr}` }))
      const results = stdout.split('\n').filter((l) => l.startsWith('RESULT ')).map((l) => JSON.parse(l.slice(7)))
      resolve({ results, stdout, stderr })
    })
  })
}

module.exports = { localRegistry, npmEnv, makeRuntime, invoke }
