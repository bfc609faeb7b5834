// Bundles src/handler.ts into <outdir>/index.js (default dist/) for the Lambda Node runtimes,
// with breakwater left external: it ships a native binary per platform, which a bundler
// cannot inline, so it must be installed in the function's node_modules (CDK:
// bundling.nodeModules: ['breakwater']; SAM: see Makefile).
//
//   node build.mjs [outdir]
import { build } from 'esbuild'
import { fileURLToPath } from 'node:url'
import path from 'node:path'

const here = path.dirname(fileURLToPath(import.meta.url))
const outdir = path.resolve(process.argv[2] ?? path.join(here, 'dist'))

export const options = {
  entryPoints: [path.join(here, 'src', 'handler.ts')],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  external: ['breakwater'],
  outfile: path.join(outdir, 'index.js'),
  sourcemap: false,
  logLevel: 'warning',
}

const result = await build({ ...options, metafile: true })
const inputs = Object.keys(result.metafile.inputs)
console.log(`bundled ${inputs.length} input(s) into ${path.relative(process.cwd(), options.outfile)} (external: breakwater)`)
