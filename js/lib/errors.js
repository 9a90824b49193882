'use strict'
// The protocol's error codes (DESIGN §3) and how they travel: as a failed
// ack `{ ok: false, error: { code, message } }` over Socket.IO, and as
// `{ error: { code, message, reason? } }` with an HTTP status over HTTP.

const STATUS = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  TOO_LARGE: 413,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
  INTERNAL: 500,
}

class ProtocolError extends Error {
  constructor(code, message, reason) {
    super(message)
    this.code = code
    this.reason = reason
  }

  toAck() {
    return { ok: false, error: { code: this.code, message: this.message } }
  }

  toHttp() {
    const error = { code: this.code, message: this.message }
    if (this.reason) error.reason = this.reason
    return { status: STATUS[this.code] || 500, body: { error } }
  }
}

// Engine codes (err.code of the addon) and the protocol code they become.
const ENGINE = {
  TOO_LARGE: 'TOO_LARGE',
  MALFORMED: 'BAD_REQUEST',
  BAD_ENCODING: 'BAD_REQUEST',
  UNSUPPORTED_VERSION: 'BAD_REQUEST',
  UNSUPPORTED_ALGORITHM: 'BAD_REQUEST',
  UNKNOWN_KEY: 'BAD_REQUEST',
  RETIRED_KEY: 'BAD_REQUEST',
  BAD_TAG: 'BAD_REQUEST',
  INVALID_ROOM: 'BAD_REQUEST',
}

/** Turns anything thrown into a ProtocolError; unknown failures are INTERNAL. */
function fromThrown(err, log) {
  if (err instanceof ProtocolError) return err
  if (err && ENGINE[err.code]) return new ProtocolError(ENGINE[err.code], err.message, err.code)
  if (log) log('internal error', err)
  return new ProtocolError('INTERNAL', 'internal error')
}

const bad = (message) => new ProtocolError('BAD_REQUEST', message)

module.exports = { ProtocolError, fromThrown, bad, STATUS }
