'use strict'
// Opening sealed envelopes (docs/format.md) with WebCrypto:
// header (18 bytes: version, algorithm, key id, nonce) ‖ ciphertext ‖ tag,
// associated data = header ‖ UTF-8(room ‖ 0 ‖ id ‖ 0 ‖ sender).
const { webcrypto } = require('./crypto')

const HEADER = 18
const TAG = 16
const utf8 = new TextEncoder()
const utf8Strict = new TextDecoder('utf-8', { fatal: true })

function fromBase64(b64) {
  const bin = atob(b64)
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  return out
}

/** Why a message did not open: `code` is NO_KEY, BAD_ENVELOPE or BAD_TAG. */
class Unreadable extends Error {
  constructor(code, message) {
    super(message)
    this.code = code
  }
}

/** Room keys as non-extractable CryptoKeys, by room and master key id. */
class RoomKeys {
  constructor() {
    this.byRoom = new Map()
  }

  /**
   * Adds `[{ id, key }]` (key: base64 of 32 bytes) from a join ack or a
   * `room key` event; returns the ids that were new.
   */
  async add(room, keys) {
    const map = this.byRoom.get(room) || new Map()
    this.byRoom.set(room, map)
    const added = []
    for (const entry of Array.isArray(keys) ? keys : []) {
      const { id, key } = entry || {}
      if (!Number.isSafeInteger(id) || typeof key !== 'string' || map.has(id)) continue
      let raw
      try {
        raw = fromBase64(key)
      } catch {
        continue
      }
      if (raw.length !== 32) continue
      map.set(id, await webcrypto().subtle.importKey('raw', raw, 'AES-GCM', false, ['decrypt']))
      added.push(id)
    }
    return added
  }

  /** Drops a room's keys: its history started over, maybe under another keyring. */
  forget(room) {
    this.byRoom.delete(room)
  }

  has(room, id) {
    return Boolean(this.byRoom.get(room)?.has(id))
  }

  /** The plaintext of a Message; throws Unreadable. */
  async open(msg) {
    const key = this.byRoom.get(msg.room)?.get(msg.keyId)
    if (!key) throw new Unreadable('NO_KEY', `no room key ${msg.keyId} for room ${msg.room}`)
    let bytes
    try {
      bytes = fromBase64(msg.message)
    } catch {
      throw new Unreadable('BAD_ENVELOPE', 'not base64')
    }
    if (bytes.length < HEADER + TAG || bytes[0] !== 1 || bytes[1] !== 1) throw new Unreadable('BAD_ENVELOPE', 'not a v1 envelope')
    const keyId = ((bytes[2] << 24) | (bytes[3] << 16) | (bytes[4] << 8) | bytes[5]) >>> 0
    if (keyId !== msg.keyId) throw new Unreadable('BAD_ENVELOPE', 'keyId differs from the envelope header')
    const context = utf8.encode(`${msg.room}\0${msg.id}\0${msg.sender}`)
    const aad = new Uint8Array(HEADER + context.length)
    aad.set(bytes.subarray(0, HEADER))
    aad.set(context, HEADER)
    let plain
    try {
      plain = await webcrypto().subtle.decrypt(
        { name: 'AES-GCM', iv: bytes.subarray(6, HEADER), additionalData: aad },
        key,
        bytes.subarray(HEADER),
      )
    } catch {
      throw new Unreadable('BAD_TAG', 'the envelope does not open with this room key and context')
    }
    try {
      return utf8Strict.decode(plain)
    } catch {
      throw new Unreadable('BAD_ENVELOPE', 'the plaintext is not UTF-8')
    }
  }
}

module.exports = { RoomKeys, Unreadable }
