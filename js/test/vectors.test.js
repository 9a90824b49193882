'use strict'
// The shared envelope vectors (tests/vectors/envelope-v1.json), which the
// Rust engine and the C library run too: every valid case opens, its room key
// and envelope are reproduced (the envelope with node:crypto from the case's
// nonce and the addon's room key), and every invalid case is refused with
// its exact code. Each case names its room's key epoch: the room argument is
// `{ room, epoch }`, and a bare room name (epoch 0) must agree exactly when
// the epoch is 0 and fail otherwise.
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const path = require('node:path')
const fs = require('node:fs')
const { isUtf8 } = require('node:buffer')
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

test('the vectors have epochs, 0 and others', () => {
  for (const c of [...vectors.cases, ...vectors.invalid]) assert.ok(Number.isInteger(c.epoch), c.name)
  assert.ok(vectors.cases.some((c) => c.epoch === 0))
  assert.ok(vectors.cases.some((c) => c.epoch === 0xffffffff))
  assert.ok(vectors.invalid.some((c) => c.epoch > 0))
})

for (const c of vectors.cases) {
  const room = { room: c.room, epoch: c.epoch }
  test(`opens: ${c.name}`, async () => {
    const sealer = new Sealer(keyringOf(c.key_id, c.master_key))
    const ctx = b64(c.context)
    const plaintext = b64(c.plaintext)
    assert.deepEqual(sealer.decryptBuffer(c.envelope, room, ctx), plaintext)
    // The binary form, the async and the batch forms open the same.
    assert.deepEqual(sealer.decryptBuffer(b64(c.envelope), room, ctx), plaintext)
    assert.deepEqual(await sealer.decryptBufferAsync(c.envelope, room, ctx), plaintext)
    // (The batch opens to text: a plaintext that is not UTF-8 authenticates
    // and then is BAD_ENCODING.)
    const [outcome] = sealer.decryptBatch([{ envelope: c.envelope, room: c.room, epoch: c.epoch, context: ctx }])
    if (isUtf8(plaintext)) assert.deepEqual(outcome, { ok: true, message: plaintext.toString() })
    else assert.equal(outcome.error.code, 'BAD_ENCODING')
    // A room name alone is epoch 0: the same call for an epoch-0 case, a
    // different key (BAD_TAG) for any other.
    if (c.epoch === 0) {
      assert.deepEqual(sealer.decryptBuffer(c.envelope, c.room, ctx), plaintext)
    } else {
      assert.throws(() => sealer.decryptBuffer(c.envelope, c.room, ctx), { code: 'BAD_TAG' })
      const [bare] = sealer.decryptBatch([{ envelope: c.envelope, room: c.room, context: ctx }])
      assert.equal(bare.error.code, 'BAD_TAG')
    }
  })

  test(`reproduces: ${c.name}`, () => {
    const keyring = keyringOf(c.key_id, c.master_key)
    const roomKey = keyring.roomKey(room, c.key_id)
    assert.deepEqual(roomKey, { id: c.key_id, epoch: c.epoch, key: c.room_key })
    const sealer = new Sealer(keyring)
    assert.deepEqual(sealer.roomKey(room, c.key_id), roomKey)
    assert.deepEqual(sealer.roomKeys(room), [roomKey])
    if (c.epoch !== 0) assert.notEqual(keyring.roomKey(c.room, c.key_id).key, c.room_key)
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
    const room = { room: c.room, epoch: c.epoch }
    assert.throws(
      () => sealer.decryptBuffer(c.envelope, room, b64(c.context)),
      (err) => err instanceof Error && err.code === c.error,
    )
    // The batch form reports the same code per item, without throwing.
    const [outcome] = sealer.decryptBatch([
      { envelope: c.envelope, room: c.room, epoch: c.epoch, context: b64(c.context) },
    ])
    assert.equal(outcome.ok, false)
    assert.equal(outcome.error.code, c.error)
    assert.equal(outcome.message, undefined)
  })
}
