'use strict'
// Sealer#rewrap and its forms (buffer, async, batch), from the shared
// envelope vectors (tests/vectors/envelope-v1.json) that the Rust engine and
// the C library run too: every valid case rewraps to a newer primary key and
// opens to the same plaintext with the same room, key epoch and context;
// every invalid case fails with the code `decrypt` gives; already-primary is
// a no-op.
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
const keyIdOf = (envelope) => Buffer.from(envelope, typeof envelope === 'string' ? 'base64' : undefined).readUInt32BE(2)

// A key id other than `id` ("newer"; u32::MAX has none, so the one below).
const otherId = (id) => (id === 0xffffffff ? id - 1 : id + 1)

function sealerOf(keys, primary) {
  return new Sealer(
    Keyring.fromJson(JSON.stringify({ primary, min_decrypt: 0, keys: keys.map(([id, key]) => ({ id, key })) })),
  )
}

for (const c of vectors.cases) {
  test(`rewraps to a newer primary: ${c.name}`, async () => {
    const newId = otherId(c.key_id)
    const newKey = crypto.randomBytes(32).toString('base64')
    const both = sealerOf([[c.key_id, c.master_key], [newId, newKey]], newId)
    const onlyNew = sealerOf([[newId, newKey]], newId)
    const onlyOld = sealerOf([[c.key_id, c.master_key]], c.key_id)
    const ctx = b64(c.context)
    const plaintext = b64(c.plaintext)
    // The case's room at its key epoch; the same name at another epoch is
    // another key.
    const room = { room: c.room, epoch: c.epoch }
    const otherRoom = { room: c.room === 'elsewhere' ? 'other' : 'elsewhere', epoch: c.epoch }
    const otherEpoch = { room: c.room, epoch: c.epoch === 0 ? 1 : c.epoch - 1 }

    const text = both.rewrap(c.envelope, room, ctx)
    assert.equal(typeof text, 'string')
    assert.notEqual(text, c.envelope)
    assert.equal(text.length, c.envelope.length)
    assert.equal(keyIdOf(text), newId)
    assert.deepEqual(onlyNew.decryptBuffer(text, room, ctx), plaintext)
    assert.throws(() => onlyOld.decryptBuffer(text, room, ctx), { code: 'UNKNOWN_KEY' })
    assert.throws(() => onlyNew.decryptBuffer(text, otherRoom, ctx), { code: 'BAD_TAG' })
    assert.throws(() => onlyNew.decryptBuffer(text, otherEpoch, ctx), { code: 'BAD_TAG' })
    assert.throws(() => onlyNew.decryptBuffer(text, room, Buffer.concat([ctx, Buffer.from('!')])), {
      code: 'BAD_TAG',
    })

    const buffer = both.rewrapBuffer(b64(c.envelope), room, ctx)
    assert.ok(Buffer.isBuffer(buffer))
    assert.equal(keyIdOf(buffer), newId)
    assert.deepEqual(onlyNew.decryptBuffer(buffer, room, ctx), plaintext)
    assert.deepEqual(onlyNew.decryptBuffer(both.rewrapBuffer(c.envelope, room, ctx), room, ctx), plaintext)

    const later = await both.rewrapAsync(c.envelope, room, ctx)
    assert.deepEqual(onlyNew.decryptBuffer(later, room, ctx), plaintext)
    const laterBuffer = await both.rewrapBufferAsync(b64(c.envelope), room, ctx)
    assert.deepEqual(onlyNew.decryptBuffer(laterBuffer, room, ctx), plaintext)

    // Already under the primary: null, in every form.
    assert.equal(both.rewrap(text, room, ctx), null)
    assert.equal(both.rewrapBuffer(buffer, room, ctx), null)
    assert.equal(await both.rewrapAsync(text, room, ctx), null)
    assert.equal(await both.rewrapBufferAsync(buffer, room, ctx), null)
    assert.equal(onlyOld.rewrap(c.envelope, room, ctx), null)
    assert.deepEqual(both.rewrapBatch([{ envelope: text, room: c.room, epoch: c.epoch, context: ctx }]), [
      { ok: true, unchanged: true },
    ])

    // The batch reseals at the item's epoch.
    const [batched] = await both.rewrapBatchAsync([{ envelope: c.envelope, room: c.room, epoch: c.epoch, context: ctx }])
    assert.equal(batched.keyId, newId)
    assert.deepEqual(onlyNew.decryptBuffer(batched.envelope, room, ctx), plaintext)

    // Wrong room, epoch or context: the codes of decrypt.
    assert.throws(() => both.rewrap(c.envelope, otherRoom, ctx), { code: 'BAD_TAG' })
    assert.throws(() => both.rewrap(c.envelope, otherEpoch, ctx), { code: 'BAD_TAG' })
    await assert.rejects(both.rewrapAsync(c.envelope, otherEpoch, ctx), { code: 'BAD_TAG' })
    const [wrongEpoch] = both.rewrapBatch([{ envelope: c.envelope, room: c.room, epoch: otherEpoch.epoch, context: ctx }])
    assert.equal(wrongEpoch.error.code, 'BAD_TAG')
    assert.throws(() => both.rewrap(c.envelope, room, Buffer.concat([ctx, Buffer.from('!')])), { code: 'BAD_TAG' })
    await assert.rejects(both.rewrapAsync(c.envelope, { room: 'bad\nroom', epoch: c.epoch }, ctx), { code: 'INVALID_ROOM' })
  })
}

for (const c of vectors.invalid) {
  test(`rewrap refuses with ${c.error}: ${c.name}`, async () => {
    // As given, and with a newer primary added (what `keys rewrap` runs with).
    const given = c.keyring
    const newest = Math.max(...given.keys.map((k) => k.id)) + 1
    const rotated = {
      ...given,
      primary: newest,
      keys: [...given.keys, { id: newest, key: crypto.randomBytes(32).toString('base64') }],
    }
    const room = { room: c.room, epoch: c.epoch }
    for (const keyring of [given, rotated]) {
      const sealer = new Sealer(Keyring.fromJson(JSON.stringify(keyring)))
      const ctx = b64(c.context)
      assert.throws(() => sealer.decryptBuffer(c.envelope, room, ctx), { code: c.error })
      assert.throws(() => sealer.rewrap(c.envelope, room, ctx), (err) => err instanceof Error && err.code === c.error)
      assert.throws(() => sealer.rewrapBuffer(c.envelope, room, ctx), { code: c.error })
      await assert.rejects(sealer.rewrapAsync(c.envelope, room, ctx), { code: c.error })
      await assert.rejects(sealer.rewrapBufferAsync(c.envelope, room, ctx), { code: c.error })
      for (const [outcome] of [
        sealer.rewrapBatch([{ envelope: c.envelope, room: c.room, epoch: c.epoch, context: ctx }]),
        await sealer.rewrapBatchAsync([{ envelope: c.envelope, room: c.room, epoch: c.epoch, context: ctx }]),
      ]) {
        assert.equal(outcome.ok, false)
        assert.equal(outcome.unchanged, false)
        assert.equal(outcome.error.code, c.error)
        assert.equal(outcome.envelope, undefined)
      }
      assert.deepEqual(sealer.sealCounts().reduce((n, s) => n + s.count, 0), 0, 'a failed rewrap sealed')
    }
  })
}

test('a batch rewraps under one primary and reports each item', async () => {
  const sealer = new Sealer(Keyring.generate())
  const a = sealer.encrypt('one', 'a', '1')
  const b = sealer.encrypt('two', 'b', '2')
  assert.equal(sealer.rotate(), 2)
  const current = sealer.encrypt('three', 'c', '3')
  const items = [
    { envelope: a, room: 'a', context: '1' },
    { envelope: b, room: 'b', context: Buffer.from('2') },
    { envelope: current, room: 'c', context: '3' },
    { envelope: a, room: 'a', context: 'X' },
    { envelope: 'not base64!', room: 'a', context: '1' },
  ]
  for (const out of [sealer.rewrapBatch(items), await sealer.rewrapBatchAsync(items)]) {
    assert.equal(out.length, 5)
    assert.equal(out[0].ok, true)
    assert.equal(out[0].unchanged, false)
    assert.equal(out[0].keyId, 2)
    assert.equal(sealer.decrypt(out[0].envelope, 'a', '1'), 'one')
    assert.equal(sealer.decrypt(out[1].envelope, 'b', '2'), 'two')
    assert.deepEqual(out[2], { ok: true, unchanged: true })
    assert.equal(out[3].error.code, 'BAD_TAG')
    assert.equal(out[4].error.code, 'BAD_ENCODING')
  }
  assert.deepEqual(sealer.rewrapBatch([]), [])
})

test('wrong argument types are TypeErrors', async () => {
  const sealer = new Sealer(Keyring.generate())
  assert.throws(() => sealer.rewrap(5, 'r'), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => sealer.rewrapBuffer({}, 'r'), { name: 'TypeError' })
  assert.throws(() => sealer.rewrapBatch([{ envelope: 5 }]), { name: 'TypeError' })
})
