'use strict'
// Pacing the SDK's joins against the servers' per-connection join limits
// (docs/protocol.md §6). The Rust server admits catch-ups (`join { since }`)
// at 2/s with a burst of 10 by default: a client in many rooms, or paging a
// long backlog, goes over it right after a reconnect. RATE_LIMITED there is
// transient: wait (the server's hint if it gives one, else a jittered
// exponential backoff, bounded) and ask again, never give the room up.

/** Catch-ups one connection has in flight at once: below the default burst of 10. */
const CATCH_UP_CONCURRENCY = 4
const BASE_MS = 250
const MAX_MS = 5000

/** The wait before retry number `attempt` (0-based): the hint if given, else full-jitter exponential. */
function backoffDelay(attempt, hintMs = null) {
  if (Number.isFinite(hintMs) && hintMs > 0) return Math.min(hintMs, MAX_MS * 6)
  const cap = Math.min(MAX_MS, BASE_MS * 2 ** Math.min(attempt, 10))
  return cap / 2 + Math.random() * (cap / 2)
}

/** At most `size` holders at once; the rest wait in order. */
class Slots {
  constructor(size) {
    this.size = size
    this.busy = 0
    this.waiting = []
  }

  async run(fn) {
    if (this.busy >= this.size) await new Promise((resolve) => this.waiting.push(resolve))
    else this.busy++
    try {
      return await fn()
    } finally {
      const next = this.waiting.shift()
      if (next) next()
      else this.busy--
    }
  }
}

module.exports = { CATCH_UP_CONCURRENCY, backoffDelay, Slots }
