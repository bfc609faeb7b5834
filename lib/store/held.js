'use strict'
// The probe permits one store instance holds, per circuit, oldest first: releaseProbe(name)
// gives back the oldest. Shared by the Redis and DynamoDB stores.

class Held {
  constructor() {
    this.byName = new Map() // name -> permits, oldest first
  }

  /** Records a permit taken for `name`; `same(p)` marks an older one it replaces (an expired slot of ours). */
  add(name, permit, same = () => false) {
    const mine = (this.byName.get(name) || []).filter((p) => !same(p))
    mine.push(permit)
    this.byName.set(name, mine)
  }

  /** Removes and returns the oldest permit held for `name`, or undefined. */
  take(name) {
    const mine = this.byName.get(name)
    if (mine === undefined) return undefined
    const p = mine.shift()
    if (mine.length === 0) this.byName.delete(name)
    return p
  }
}

module.exports = { Held }
