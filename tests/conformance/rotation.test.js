'use strict'
// Key rotation without a restart: the operator adds a key to the keyring
// file, makes it primary and sends SIGHUP. Members get `room key`, new
// messages are sealed under the new key, old ones still open.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { start } = require('./lib/servers')
const { connect, request, until, openMessage } = require('./lib/client')

const TARGET = process.env.CHATSEAL_TARGET || 'rust'
const key = () => crypto.randomBytes(32).toString('base64')

function writeKeyring(file, keyring) {
  const tmp = `${file}.tmp`
  fs.writeFileSync(tmp, JSON.stringify(keyring), { mode: 0o600 })
  fs.renameSync(tmp, file)
}

test('SIGHUP picks up a new primary key; members get it; old messages still open', { timeout: 60000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatseal-rotation-'))
  const file = path.join(dir, 'keyring.json')
  const k1 = key()
  writeKeyring(file, { primary: 1, min_decrypt: 1, keys: [{ id: 1, key: k1 }] })
  const server = await start(TARGET, { env: { CHATSEAL_KEYRING_FILE: file } })
  try {
    const ann = await connect(server.url, { name: 'ann' })
    const bob = await connect(server.url, { name: 'bob' })
    const announced = []
    bob.on('room key', (m) => announced.push(m))
    const joined = await request(bob, 'join', { room: 'vault' })
    await request(ann, 'join', { room: 'vault' })
    assert.deepEqual(joined.keys.map((k) => [k.id, k.epoch]), [[1, 0]])
    assert.equal(joined.epoch, 0)
    const before = await request(ann, 'chat message', { message: 'under key one', room: 'vault' })
    await until(() => bob.received.some((m) => m.id === before.id))
    assert.equal(bob.received.find((m) => m.id === before.id).keyId, 1)

    writeKeyring(file, { primary: 2, min_decrypt: 1, keys: [{ id: 1, key: k1 }, { id: 2, key: key() }] })
    server.child.kill('SIGHUP')
    // Every room bob is in is announced: vault and the lobby.
    const vault = () => announced.find((m) => m.room === 'vault')
    await until(() => vault() && announced.some((m) => m.room === 'lobby'), 10000, 'room key announcements')
    assert.equal(vault().key.id, 2)
    assert.equal(vault().key.epoch, 0, 'a rotation keeps the room\'s epoch')
    assert.equal(Buffer.from(vault().key.key, 'base64').length, 32)

    const after = await request(ann, 'chat message', { message: 'under key two', room: 'vault' })
    await until(() => bob.received.some((m) => m.id === after.id))
    const fresh = bob.received.find((m) => m.id === after.id)
    assert.equal(fresh.keyId, 2)
    assert.equal(fresh.epoch, 0)
    // With the announced key added to the ones from join, both open.
    const keys = [...joined.keys, vault().key]
    assert.equal(await openMessage(keys, fresh), 'under key two')
    assert.equal(await openMessage(keys, bob.received.find((m) => m.id === before.id)), 'under key one')
    // A later join hands out both keys; history under key 1 still opens.
    const rejoined = await request(bob, 'join', { room: 'vault', since: 0 })
    assert.deepEqual(rejoined.keys.map((k) => [k.id, k.epoch]), [[1, 0], [2, 0]])
    const texts = await Promise.all(rejoined.missed.map((m) => openMessage(rejoined.keys, m)))
    assert.deepEqual(texts, ['under key one', 'under key two'])

    // A broken keyring file is refused and the server keeps its keys.
    fs.writeFileSync(file, 'not json', { mode: 0o600 })
    server.child.kill('SIGHUP')
    const still = await request(ann, 'chat message', { message: 'still key two', room: 'vault' })
    assert.equal(still.ok, true)
    await until(() => bob.received.some((m) => m.id === still.id))
    assert.equal(bob.received.find((m) => m.id === still.id).keyId, 2)
    ann.close()
    bob.close()
  } finally {
    await server.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
