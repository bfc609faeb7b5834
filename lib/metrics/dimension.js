'use strict'
// A circuit's name as a CloudWatch dimension value. CloudWatch takes 1-1024 ASCII characters
// without control characters and with at least one non-whitespace character; one datum that
// breaks the rule fails its whole PutMetricData request (every other circuit in it too), and
// an EMF line with one is dropped. Circuit names are any string, so the names CloudWatch would
// refuse are published under a stable substitute instead.

const crypto = require('node:crypto')

const MAX = 1024
const HASH_CHARS = 12 // 48 bits: two hostile names that fold alike still get different values
const VALID = /^[\x20-\x7e]*[\x21-\x7e][\x20-\x7e]*$/

/** True when CloudWatch accepts `value` as a dimension value as it is. */
function isValidDimensionValue(value) {
  return typeof value === 'string' && value.length <= MAX && VALID.test(value)
}

/**
 * `name` itself when CloudWatch accepts it; otherwise `<folded>~<hash>`: the name folded to
 * ASCII (accents dropped by Unicode NFKD, every other character outside printable ASCII
 * replaced by `_`, leading and trailing spaces trimmed, cut to fit) followed by `~` and the
 * first 12 hex digits of the SHA-256 of the name's UTF-16 code units. Deterministic (every
 * process and every host publishes a name under the same value) and collision-resistant (the
 * hash is of the whole original name, so `caf\u00e9`, `cafe\u0301` and `caf\u00e8` differ).
 * @param {string} name
 * @returns {string}
 */
function cloudWatchDimensionValue(name) {
  if (typeof name !== 'string') throw new TypeError(`breakwater: cloudWatchDimensionValue(name): name must be a string, got ${typeof name}`)
  if (isValidDimensionValue(name)) return name
  const hash = crypto.createHash('sha256').update(Buffer.from(name, 'utf16le')).digest('hex').slice(0, HASH_CHARS)
  const folded = name.normalize('NFKD').replace(/\p{M}/gu, '').replace(/[^\x20-\x7e]/gu, '_').trim()
  return `${folded.slice(0, MAX - HASH_CHARS - 1)}~${hash}`
}

module.exports = { cloudWatchDimensionValue, isValidDimensionValue }
