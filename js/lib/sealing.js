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

module.exports = { inProcess, remote, contextText }
