'use strict'
// The SDK's one error type: the protocol's codes (docs/protocol.md §2) plus
// the few the SDK adds itself (TIMEOUT, QUEUE_FULL, NOT_JOINED, CLOSED,
// LEFT, EXPIRED).

class ChatError extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`)
    this.name = 'ChatError'
    this.code = code
    this.reason = message
  }
}

/** From an ack's `{ code, message }`. */
function fromAck(error) {
  if (!error || typeof error.code !== 'string') return new ChatError('INTERNAL', 'malformed error from the server')
  const err = new ChatError(error.code, String(error.message || ''))
  // A retry hint, when the server gives one (milliseconds or seconds).
  const hint = Number.isFinite(error.retryAfterMs) ? error.retryAfterMs : Number.isFinite(error.retryAfter) ? error.retryAfter * 1000 : null
  if (hint !== null && hint > 0) err.retryAfterMs = hint
  return err
}

/** From a refused handshake: its message is `CODE: reason` (protocol §1). */
function fromConnectError(err) {
  const m = /^([A-Z_]+): ?(.*)$/s.exec(String(err && err.message))
  return m ? new ChatError(m[1], m[2]) : new ChatError('OFFLINE', String((err && err.message) || 'connection failed'))
}

module.exports = { ChatError, fromAck, fromConnectError }
