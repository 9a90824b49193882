// Opening sealed envelopes in the browser with WebCrypto (docs/format.md):
// header (18 bytes: version, algorithm, key id, nonce) ‖ ciphertext ‖ tag,
// associated data = header ‖ room ‖ 0 ‖ id ‖ 0 ‖ sender.

const HEADER = 18
const utf8 = new TextEncoder()
const text = new TextDecoder('utf-8', { fatal: true })

function fromBase64(b64) {
  const bin = atob(b64)
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  return out
}

/** Room keys as CryptoKeys, by master key id; imported once, not extractable. */
export class RoomKeys {
  constructor() {
    this.byRoom = new Map()
  }

  async add(room, keys) {
    const map = this.byRoom.get(room) || new Map()
    for (const { id, key } of keys) {
      if (!map.has(id)) {
        map.set(id, await crypto.subtle.importKey('raw', fromBase64(key), 'AES-GCM', false, ['decrypt']))
      }
    }
    this.byRoom.set(room, map)
  }

  /** The plaintext of a Message; throws if it does not open. */
  async open(msg) {
    const key = this.byRoom.get(msg.room)?.get(msg.keyId)
    if (!key) throw new Error(`no key ${msg.keyId} for room ${msg.room}`)
    const bytes = fromBase64(msg.message)
    if (bytes.length < HEADER + 16 || bytes[0] !== 1 || bytes[1] !== 1) throw new Error('not a v1 envelope')
    const context = utf8.encode(`${msg.room}\0${msg.id}\0${msg.sender}`)
    const aad = new Uint8Array(HEADER + context.length)
    aad.set(bytes.subarray(0, HEADER))
    aad.set(context, HEADER)
    const plain = await crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: bytes.subarray(6, HEADER), additionalData: aad },
      key,
      bytes.subarray(HEADER),
    )
    return text.decode(plain)
  }
}
