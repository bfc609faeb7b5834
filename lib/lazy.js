'use strict'
// Exports that load their module on first call. A Lambda cold start pays for every module the
// entry point loads, and most functions never call the exporters (Prometheus, CloudWatch,
// EMF, alarms, the stats handler): loaded eagerly they were about half of `require`'s time.
//
// Each export is a small wrapper function with the real function's name, so the entry's
// names stay functions from the first moment -- CJS destructuring and ESM named exports
// (esm.cjs) work unchanged -- and the module behind it is required on the first call.
// Only functions can be lazy this way: classes (instanceof) and plain objects must be exported
// as themselves.

/**
 * @param {NodeRequire} load the caller's `require` (paths are relative to the caller)
 * @param {Record<string, string[]>} table module path -> the names of the functions it exports
 * @param {Record<string, string[]>} [statics] function name -> properties read off the real
 *   function on first access (e.g. `toPrometheus.contentType`)
 * @returns {Record<string, Function>}
 */
function lazyExports(load, table, statics = {}) {
  const out = {}
  for (const [file, names] of Object.entries(table)) {
    for (const name of names) {
      let real = null
      const resolve = () => real || (real = load(file)[name])
      // a method definition: named like the real function, and not a constructor
      const wrapper = { [name](...args) { return (real || resolve()).apply(this, args) } }[name]
      for (const prop of statics[name] || []) {
        Object.defineProperty(wrapper, prop, { enumerable: true, get: () => resolve()[prop] })
      }
      out[name] = wrapper
    }
  }
  return out
}

module.exports = { lazyExports }
