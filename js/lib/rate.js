'use strict'
// A token bucket per connection: `burst` messages at once, refilled at
// `perSec` per second (the Rust server uses governor with the same quota).

class RateLimiter {
  constructor(perSec, burst, now = () => performance.now()) {
    this.perMs = perSec / 1000
    this.burst = burst
    this.tokens = burst
    this.now = now
    this.last = now()
  }

  /** Takes one token; false when the bucket is empty. */
  take() {
    const t = this.now()
    this.tokens = Math.min(this.burst, this.tokens + (t - this.last) * this.perMs)
    this.last = t
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }
}

module.exports = { RateLimiter }
