'use strict'
// Keys that never lose a message (issue 13): the same history opens through
// a client before and after `keys rotate`, `keys rewrap` and `keys retire`,
// run against a serving Rust server (SQLite, or PostgreSQL for rust-pg).
const { test } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { start, keys } = require('./lib/servers')
const { connect, request, sleep, openMessage } = require('./lib/client')

const TARGET = process.env.CHATSEAL_TARGET || 'rust'

test('history opens the same before and after rotate, rewrap and retire', { timeout: 120000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatseal-keys-'))
  const file = path.join(dir, 'keyring.json')
  fs.writeFileSync(file, JSON.stringify({ primary: 1, keys: [{ id: 1, key: crypto.randomBytes(32).toString('base64') }] }), { mode: 0o600 })
  const env = { CHATSEAL_KEYRING_FILE: file }
  const server = await start(TARGET, { env })
  const cli = { env: { ...env }, dataDir: server.dataDir }
  if (TARGET === 'rust-pg') cli.env.DATABASE_URL = process.env.CHATSEAL_CONFORMANCE_PG_URL
  const room = 'annals'
  try {
    const ann = await connect(server.url, { name: 'ann' })
    await request(ann, 'join', { room })
    for (let i = 0; i < 30; i++) assert.equal((await request(ann, 'chat message', { message: `old ${i}`, room })).ok, true)
    const read = async () => {
      const join = await request(ann, 'join', { room, since: 0 })
      const texts = await Promise.all(join.missed.map((m) => openMessage(join.keys, m)))
      return { join, texts, rows: join.missed.map((m) => [m.id, m.seq, m.sender].join(' ')) }
    }
    const before = await read()
    assert.deepEqual(before.join.keys.map((k) => k.id), [1])

    const rotated = await keys(['rotate'], cli)
    assert.equal(rotated.code, 0, rotated.stderr)
    assert.match(rotated.stdout, /key 2 is primary .* on 1 running server/)
    for (let i = 0; i < 5; i++) assert.equal((await request(ann, 'chat message', { message: `new ${i}`, room })).ok, true)

    const refused = await keys(['retire', '--below', '2'], cli)
    assert.notEqual(refused.code, 0)
    assert.match(refused.stderr, /refused: 30 stored message\(s\) still need key ids below 2/)
    assert.match(refused.stderr, /keys rewrap/)

    const status = JSON.parse((await keys(['status', '--json'], cli)).stdout)
    assert.deepEqual(status.keys.map((k) => [k.id, k.primary, k.retired, k.messages]), [[1, false, false, 30], [2, true, false, 5]])

    const rewrapped = await keys(['rewrap', '--batch', '7'], cli)
    assert.equal(rewrapped.code, 0, rewrapped.stderr)
    assert.match(rewrapped.stdout, /rewrapped 30 message\(s\)/)
    const retired = await keys(['retire', '--below', '2'], cli)
    assert.equal(retired.code, 0, retired.stderr)

    // The server reads the retirement from the store within a second or so.
    let after = await read()
    const deadline = Date.now() + 10000
    while (!after.join.keys.every((k) => k.id === 2)) {
      assert.ok(Date.now() < deadline, 'join still hands out retired keys')
      await sleep(100)
      after = await read()
    }
    assert.deepEqual(after.join.keys.map((k) => k.id), [2])
    assert.ok(after.join.missed.every((m) => m.keyId === 2))
    assert.deepEqual(after.texts, [...before.texts, ...Array.from({ length: 5 }, (_, i) => `new ${i}`)])
    assert.deepEqual(after.rows.slice(0, 30), before.rows, 'ids, seqs and senders kept')
    ann.close()
  } finally {
    await server.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
