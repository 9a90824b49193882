'use strict'
// Interop with the platform's own AES-GCM given only the room key, both ways:
// what a browser (WebCrypto) or a plain node:crypto program does with the
// keys a `join` ack hands out.
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { Keyring, Sealer, chatContext } = require('..')

const subtle = crypto.webcrypto.subtle
const HEADER = 18

async function importKey(roomKey) {
  return subtle.importKey('raw', Buffer.from(roomKey.key, 'base64'), 'AES-GCM', false, ['encrypt', 'decrypt'])
}

async function webOpen(roomKey, envelope, context) {
  const bytes = Buffer.from(envelope, 'base64')
  const aad = Buffer.concat([bytes.subarray(0, HEADER), context])
  const key = await importKey(roomKey)
  const plain = await subtle.decrypt({ name: 'AES-GCM', iv: bytes.subarray(6, HEADER), additionalData: aad }, key, bytes.subarray(HEADER))
  return Buffer.from(plain)
}

async function webSeal(roomKey, plaintext, context) {
  const header = Buffer.alloc(HEADER)
  header[0] = 1
  header[1] = 1
  header.writeUInt32BE(roomKey.id, 2)
  crypto.randomFillSync(header, 6, 12)
  const key = await importKey(roomKey)
  const body = await subtle.encrypt(
    { name: 'AES-GCM', iv: header.subarray(6), additionalData: Buffer.concat([header, context]) },
    key,
    plaintext,
  )
  return Buffer.concat([header, Buffer.from(body)]).toString('base64')
}

const keyring = Keyring.generate()
const sealer = new Sealer(keyring)
const sizes = [0, 1, 15, 16, 17, 100, 4096, 70000]

test('WebCrypto opens what the addon seals, with the room key and context', async () => {
  for (const size of sizes) {
    const room = `room-${size}`
    const context = chatContext(room, `m-${size}`, 'ann')
    const plaintext = crypto.randomBytes(size)
    const envelope = sealer.encrypt(plaintext, room, context)
    const [roomKey] = sealer.roomKeys(room)
    assert.deepEqual(await webOpen(roomKey, envelope, context), plaintext)
  }
})

test('the addon opens what WebCrypto seals', async () => {
  for (const size of sizes) {
    const room = `room-${size}`
    const context = chatContext(room, `m-${size}`, 'bob')
    const plaintext = crypto.randomBytes(size)
    const envelope = await webSeal(sealer.roomKey(room, sealer.primaryKeyId), plaintext, context)
    assert.deepEqual(sealer.decryptBuffer(envelope, room, context), plaintext)
  }
})

test('another room, sender or id does not open (the context binds the message)', async () => {
  const context = chatContext('lobby', 'm-1', 'ann')
  const envelope = sealer.encrypt('hello', 'lobby', context)
  const wrong = [
    ['lobby', chatContext('lobby', 'm-2', 'ann')],
    ['lobby', chatContext('lobby', 'm-1', 'eve')],
    ['other', chatContext('other', 'm-1', 'ann')],
  ]
  for (const [room, ctx] of wrong) {
    assert.throws(() => sealer.decrypt(envelope, room, ctx), { code: 'BAD_TAG' })
  }
  // Another room's key fails in WebCrypto too.
  await assert.rejects(webOpen(sealer.roomKey('other', sealer.primaryKeyId), envelope, context))
})

test('chatContext is room, NUL, id, NUL, sender in UTF-8', () => {
  assert.deepEqual(chatContext('salon', 'id-1', 'zoë'), Buffer.from('salon\0id-1\0zoë', 'utf8'))
})
