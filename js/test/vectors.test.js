'use strict'
// The shared envelope vectors (tests/vectors/envelope-v1.json), which the
// Rust engine and the C library run too: every valid case opens, its room key
// and envelope are reproduced (the envelope with node:crypto from the case's
// nonce and the addon's room key), and every invalid case is refused with
// its exact code.
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const path = require('node:path')
const fs = require('node:fs')
const { Keyring, Sealer } = require('..')

const vectors = JSON.parse(
  fs.readFileSync(path.join(__dirname, '..', '..', 'tests', 'vectors', 'envelope-v1.json'), 'utf8'),
)
const b64 = (s) => Buffer.from(s, 'base64')

function keyringOf(keyId, masterKey) {
  return Keyring.fromJson(JSON.stringify({ primary: keyId, min_decrypt: keyId, keys: [{ id: keyId, key: masterKey }] }))
}

test('the vector file has valid and invalid cases', () => {
  assert.ok(vectors.cases.length >= 20)
  assert.ok(vectors.invalid.length >= 20)
})

for (const c of vectors.cases) {
  test(`opens: ${c.name}`, () => {
    const sealer = new Sealer(keyringOf(c.key_id, c.master_key))
    const opened = sealer.decryptBuffer(c.envelope, c.room, b64(c.context))
    assert.deepEqual(opened, b64(c.plaintext))
    // The binary form opens the same.
    assert.deepEqual(sealer.decryptBuffer(b64(c.envelope), c.room, b64(c.context)), b64(c.plaintext))
  })

  test(`reproduces: ${c.name}`, () => {
    const keyring = keyringOf(c.key_id, c.master_key)
    const roomKey = keyring.roomKey(c.room, c.key_id)
    assert.equal(roomKey.id, c.key_id)
    assert.equal(roomKey.key, c.room_key)
    const header = Buffer.alloc(18)
    header[0] = 1
    header[1] = 1
    header.writeUInt32BE(c.key_id, 2)
    b64(c.nonce).copy(header, 6)
    const cipher = crypto.createCipheriv('aes-256-gcm', b64(roomKey.key), b64(c.nonce))
    cipher.setAAD(Buffer.concat([header, b64(c.context)]))
    const body = Buffer.concat([cipher.update(b64(c.plaintext)), cipher.final(), cipher.getAuthTag()])
    assert.equal(Buffer.concat([header, body]).toString('base64'), c.envelope)
  })
}

for (const c of vectors.invalid) {
  test(`refuses with ${c.error}: ${c.name}`, () => {
    const sealer = new Sealer(Keyring.fromJson(JSON.stringify(c.keyring)))
    assert.throws(
      () => sealer.decryptBuffer(c.envelope, c.room, b64(c.context)),
      (err) => err instanceof Error && err.code === c.error,
    )
    // The batch form reports the same code per item, without throwing.
    const [outcome] = sealer.decryptBatch([{ envelope: c.envelope, room: c.room, context: b64(c.context) }])
    assert.equal(outcome.ok, false)
    assert.equal(outcome.error.code, c.error)
    assert.equal(outcome.message, undefined)
  })
}
