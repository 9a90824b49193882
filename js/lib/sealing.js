'use strict'
// How the Node server seals a chat message: in-process with the addon (the
// point of chatseal), or, for comparison and for those who keep a separate
// service, by POSTing to a remote /encrypt (the tutorial's architecture).
const { ProtocolError } = require('./errors')

/**
 * The chat context (DESIGN §2) as a string: its UTF-8 is exactly
 * `chatContext(room, id, sender)`, and the engine takes a string context
 * as its UTF-8 bytes. A string costs no Buffer: making one in the addon
 * for every message was ~1 µs of the ~6 µs the Node server spends on it.
 */
function contextText(room, id, sender) {
  return `${room}\0${id}\0${sender}`
}

/** In-process: one synchronous call, no hop. */
function inProcess(sealer) {
  return {
    describe: 'in-process (chatseal addon)',
    seal(room, id, sender, text) {
      return sealer.encrypt(text, room, contextText(room, id, sender))
    },
  }
}

/**
 * Remote: POST {message, room, context} to `${url}/encrypt`. The context is
 * sent as a JSON string: the chat context is UTF-8 text with NUL separators,
 * which JSON carries as \u0000, and the service seals its UTF-8 bytes.
 */
function remote(url, token) {
  const endpoint = new URL('/encrypt', url).toString()
  const headers = { 'content-type': 'application/json' }
  if (token) headers.authorization = `Bearer ${token}`
  return {
    describe: `remote service ${endpoint}`,
    async seal(room, id, sender, text) {
      let res
      try {
        res = await fetch(endpoint, {
          method: 'POST',
          headers,
          body: JSON.stringify({ message: text, room, context: contextText(room, id, sender) }),
          signal: AbortSignal.timeout(5000),
        })
      } catch (err) {
        throw new ProtocolError('UNAVAILABLE', `encryption service unreachable: ${err.cause?.code || err.name}`)
      }
      const body = await res.json().catch(() => ({}))
      if (!res.ok || typeof body.encrypted !== 'string') {
        throw new ProtocolError('UNAVAILABLE', `encryption service answered ${res.status}`)
      }
      return body.encrypted
    },
  }
}

const SEXTETS = new Int8Array(128).fill(-1)
for (const [i, c] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].entries()) {
  SEXTETS[c.charCodeAt(0)] = i
}

/**
 * The master key id in a text envelope's header (docs/format.md §1: bytes
 * 2–5, big-endian), read from its first 8 base64 characters (6 bytes) without
 * decoding the envelope into a Buffer. An envelope too short to hold a
 * header, or not base64 there, is UNAVAILABLE: what an encryption service
 * answered cannot be stored.
 */
function keyIdOf(envelope) {
  let bits = 0 // bytes 0–2, then bytes 3–5
  let high = 0
  for (let i = 0; i < 8; i++) {
    const code = envelope.charCodeAt(i) // NaN past the end
    const sextet = code < 128 ? SEXTETS[code] : -1
    if (!(sextet >= 0)) throw new ProtocolError('UNAVAILABLE', 'the encryption service answered a malformed envelope')
    bits = (bits << 6) | sextet
    if (i === 3) {
      high = bits & 0xff // byte 2
      bits = 0
    }
  }
  return high * 0x1000000 + bits
}

module.exports = { inProcess, remote, contextText, keyIdOf }
