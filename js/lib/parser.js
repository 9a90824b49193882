'use strict'
// socket.io's packet parser, with one change: a CONNECT whose `auth` is not
// an object (a string, a number, an array) is passed on marked instead of
// failing to decode. The stock parser throws on it, and socket.io then
// closes the connection without a word; the Rust server answers
// `connect_error` "BAD_REQUEST: auth must be an object", and so must this
// one (the handshake middleware refuses the mark). A `null` auth counts as
// none, as on the Rust server.
const parser = require('socket.io-parser')

/** Set on the `auth` of a CONNECT whose payload was not an object. */
const NOT_AN_OBJECT = Symbol('auth is not an object')

class Decoder extends parser.Decoder {
  decodeString(str) {
    try {
      return super.decodeString(str)
    } catch (err) {
      if (str.charAt(0) !== String(parser.PacketType.CONNECT) || err.message !== 'invalid payload') throw err
      let rest = str.slice(1)
      let nsp = '/'
      if (rest.startsWith('/')) {
        const comma = rest.indexOf(',')
        nsp = comma === -1 ? rest : rest.slice(0, comma)
        rest = comma === -1 ? '' : rest.slice(comma + 1)
      }
      const data = rest.trim() === 'null' ? {} : { [NOT_AN_OBJECT]: true }
      return { type: parser.PacketType.CONNECT, nsp, data }
    }
  }
}

module.exports = { Encoder: parser.Encoder, Decoder, NOT_AN_OBJECT }
