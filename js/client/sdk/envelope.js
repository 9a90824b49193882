'use strict'
// Opening sealed envelopes (docs/format.md) with WebCrypto:
// header (18 bytes: version, algorithm, key id, nonce) ‖ ciphertext ‖ tag,
// associated data = header ‖ UTF-8(room ‖ 0 ‖ id ‖ 0 ‖ sender). The key is
// the room key of the header's key id and the Message's `epoch` (beside the
// envelope, not in it: a wrong epoch picks a key that fails the tag).
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

/** The largest key id and epoch: both are unsigned 32-bit on the wire. */
const U32_MAX = 0xffffffff
/**
 * Keys kept per room, at most: one per (key id, epoch) a server hands out.
 * A room has at most 1,000 epochs (docs/protocol.md), so this fits 65 master
 * keys in use at once; a server sending more cannot make the client import
 * keys without end (what is past it reads NO_KEY).
 */
const KEYS_PER_ROOM_MAX = 65536

const isU32 = (n) => Number.isInteger(n) && n >= 0 && n <= U32_MAX

/**
 * A Message's key epoch: absent (a server from before epochs) is 0;
 * anything but an integer 0..=4294967295 is null (the message is unreadable).
 */
function epochOf(msg) {
  if (msg.epoch === undefined) return 0
  return isU32(msg.epoch) ? msg.epoch : null
}

const slot = (id, epoch) => `${epoch}/${id}`

/**
 * Room keys as non-extractable CryptoKeys, by room, key epoch and master
 * key id: a room's key derives from both (docs/format.md §1), so a key of
 * one epoch opens nothing sealed under another.
 */
class RoomKeys {
  constructor() {
    this.byRoom = new Map()
  }

  /**
   * Adds `[{ id, epoch, key }]` (key: base64 of 32 bytes; epoch absent = 0,
   * as older servers send) from a join ack or a `room key` event; returns
   * the `{ keyId, epoch }` that were new. Malformed entries are skipped.
   */
  async add(room, keys) {
    const map = this.byRoom.get(room) || new Map()
    this.byRoom.set(room, map)
    const added = []
    for (const entry of Array.isArray(keys) ? keys : []) {
      const { id, epoch = 0, key } = entry || {}
      if (!isU32(id) || !isU32(epoch) || typeof key !== 'string' || map.has(slot(id, epoch))) continue
      if (map.size >= KEYS_PER_ROOM_MAX) break
      let raw
      try {
        raw = fromBase64(key)
      } catch {
        continue
      }
      if (raw.length !== 32) continue
      const imported = await webcrypto().subtle.importKey('raw', raw, 'AES-GCM', false, ['decrypt'])
      raw.fill(0)
      // Another add may have taken the slot (or the last free one) while this one awaited.
      if (map.has(slot(id, epoch)) || map.size >= KEYS_PER_ROOM_MAX) continue
      map.set(slot(id, epoch), imported)
      added.push({ keyId: id, epoch })
    }
    return added
  }

  /** Drops a room's keys: its history started over, maybe under another keyring. */
  forget(room) {
    this.byRoom.delete(room)
  }

  has(room, id, epoch = 0) {
    return Boolean(this.byRoom.get(room)?.has(slot(id, epoch)))
  }

  /**
   * The plaintext of a Message, opened with the room key of its `keyId`
   * and `epoch`; throws Unreadable (NO_KEY only for a well-formed message
   * whose key this client does not hold).
   */
  async open(msg) {
    const epoch = epochOf(msg)
    if (epoch === null) throw new Unreadable('BAD_ENVELOPE', 'epoch is not an integer 0 to 4294967295')
    let bytes
    try {
      bytes = fromBase64(msg.message)
    } catch {
      throw new Unreadable('BAD_ENVELOPE', 'not base64')
    }
    if (bytes.length < HEADER + TAG || bytes[0] !== 1 || bytes[1] !== 1) throw new Unreadable('BAD_ENVELOPE', 'not a v1 envelope')
    const keyId = ((bytes[2] << 24) | (bytes[3] << 16) | (bytes[4] << 8) | bytes[5]) >>> 0
    if (keyId !== msg.keyId) throw new Unreadable('BAD_ENVELOPE', 'keyId differs from the envelope header')
    const key = this.byRoom.get(msg.room)?.get(slot(keyId, epoch))
    if (!key) throw new Unreadable('NO_KEY', `no room key ${keyId} of epoch ${epoch} for room ${msg.room}`)
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

module.exports = { RoomKeys, Unreadable, epochOf, KEYS_PER_ROOM_MAX }
