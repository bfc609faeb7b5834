'use strict'
// Shared helpers for the breakwater test suite (not a test file itself).

let n = 0
/** A breaker name unique in this process and across test files. */
function uniq(prefix) {
  n++
  return `t-${prefix}-${process.pid}-${n}-${Math.random().toString(36).slice(2, 8)}`
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** An action that rejects with a fresh Error. */
const fail = (msg = 'boom') => () => Promise.reject(new Error(msg))
/** An action that resolves to `v`. */
const ok = (v = 'ok') => () => Promise.resolve(v)

/** Runs `count` failing calls, swallowing their rejections. */
async function failN(breaker, count, msg) {
  for (let i = 0; i < count; i++) await breaker.execute(fail(msg)).catch(() => {})
}
async function okN(breaker, count) {
  for (let i = 0; i < count; i++) await breaker.execute(ok())
}

/** A promise with its resolve/reject exposed. */
function deferred() {
  let resolve, reject
  const promise = new Promise((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** Polls `pred` until true or `ms` elapse. */
async function waitFor(pred, ms = 2000, step = 5) {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (pred()) return true
    await sleep(step)
  }
  return pred()
}

/** A logger that records every line with its level. */
function recordingLogger() {
  const lines = []
  const mk = (level) => (msg) => lines.push({ level, msg })
  return { lines, info: mk('info'), warn: mk('warn'), error: mk('error'), log: mk('log'), debug: mk('debug') }
}

/**
 * Runs `node <args>` in a child process, killed after `limitMs`; resolves with its exit code,
 * signal, output and how long it ran.
 */
function runNode(args, { cwd, limitMs = 5_000 } = {}) {
  const { spawn } = require('node:child_process')
  return new Promise((resolve) => {
    const t = Date.now()
    const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { err += d })
    const killer = setTimeout(() => child.kill('SIGKILL'), limitMs)
    child.on('exit', (code, signal) => {
      clearTimeout(killer)
      resolve({ code, signal, out, err, ms: Date.now() - t })
    })
  })
}

module.exports = { uniq, sleep, fail, ok, failN, okN, deferred, waitFor, recordingLogger, runNode }
