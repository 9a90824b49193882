'use strict'
// chatseal/client against a real server (CHATSEAL_TARGET: rust or node,
// guests): what is sent is stored exactly once, what is stored is shown
// exactly once in seq order, whatever happens to the connection.
const { test, before, after, afterEach } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { start, keys: keysCli } = require('../conformance/lib/servers')
const { balancer } = require('./lib/balancer')
const { sdk, closeAll, until, sleep, stored, post, texts, assertInOrderOnce } = require('./lib/util')

const TARGET = process.env.CHATSEAL_TARGET || 'rust'
const FAST = { ratePerSec: 100000, rateBurst: 100000, maxMessageBytes: 64 * 1024 }
let server
let lb
let keyringFile
let room = 0
const fresh = () => `r${++room}`

function writeKeyring(keyring) {
  fs.writeFileSync(`${keyringFile}.tmp`, JSON.stringify(keyring), { mode: 0o600 })
  fs.renameSync(`${keyringFile}.tmp`, keyringFile)
}
const keys = [1, 2, 3, 4].map(() => crypto.randomBytes(32).toString('base64'))

before(async () => {
  keyringFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'chatseal-sdk-')), 'keyring.json')
  writeKeyring({ primary: 1, min_decrypt: 1, keys: [{ id: 1, key: keys[0] }] })
  server = await start(TARGET, { limits: FAST, env: { CHATSEAL_KEYRING_FILE: keyringFile } })
  lb = await balancer(server.url)
})

afterEach(() => {
  closeAll()
  lb.restore()
})

after(async () => {
  await lb?.close()
  await server?.stop()
})

test('send resolves once stored; everyone sees every message once, in seq order, the sender too', async () => {
  const r = fresh()
  const ann = sdk({ url: server.url, name: 'ann' })
  const bob = sdk({ url: server.url, name: 'bob' })
  await ann.join(r)
  await bob.join(r)
  const acks = await Promise.all(Array.from({ length: 20 }, (_, i) => ann.send(r, `m${i + 1}`)))
  assert.deepEqual(
    acks.map((a) => a.seq),
    Array.from({ length: 20 }, (_, i) => i + 1),
    'stored in the order sent',
  )
  const want = Array.from({ length: 20 }, (_, i) => `m${i + 1}`)
  await until(() => texts(bob, r).length === 20 && texts(ann, r).length === 20, 'both see 20')
  assert.deepEqual(texts(bob, r), want)
  assert.deepEqual(texts(ann, r), want)
  assert.ok(ann.seen.every((m) => m.own) && bob.seen.every((m) => !m.own), 'own messages marked')
  assertInOrderOnce(assert, bob, r)
})

test('presence and typing: who is online stays right across a reconnect; typing reaches the others', async () => {
  const r = fresh()
  const ann = sdk({ url: lb.url, name: 'pa' })
  const bob = sdk({ url: server.url, name: 'pb' })
  const seenTyping = []
  bob.on('typing', (t) => seenTyping.push(t))
  await ann.join(r)
  assert.deepEqual(ann.online(r), ['~pa'])
  await bob.join(r)
  assert.deepEqual(bob.online(r), ['~pa', '~pb'])
  await until(() => JSON.stringify(ann.online(r)) === JSON.stringify(['~pa', '~pb']), 'ann learns of bob')
  await ann.typing(r)
  await until(() => seenTyping.length === 1, 'bob sees ann typing')
  assert.deepEqual(seenTyping, [{ room: r, name: '~pa', typing: true }])
  await assert.rejects(ann.typing('not-joined'), (e) => e.code === 'NOT_JOINED')
  // Ann's connection drops and comes back: her list is the server's again.
  lb.cut()
  await until(() => ann.status.state === 'offline', 'ann offline')
  bob.close()
  lb.restore()
  await until(() => ann.status.state === 'online', 'ann back')
  await until(() => JSON.stringify(ann.online(r)) === JSON.stringify(['~pa']), 'bob gone from her list')
})

test('sent while the connection is down: queued, reported pending, stored once after it is back', async () => {
  const r = fresh()
  const ann = sdk({ url: lb.url, name: 'ann' })
  const bob = sdk({ url: server.url, name: 'bob' })
  await ann.join(r)
  await bob.join(r)
  await ann.send(r, 'before')
  lb.cut()
  await until(() => ann.status.state === 'offline', 'offline')
  const sends = ['one', 'two', 'three'].map((t) => ann.send(r, t))
  assert.deepEqual(
    ann.pending().map((p) => [p.text, p.state]),
    [
      ['one', 'pending'],
      ['two', 'pending'],
      ['three', 'pending'],
    ],
  )
  await sleep(1000)
  lb.restore()
  const acks = await Promise.all(sends)
  assert.deepEqual(
    acks.map((a) => a.seq),
    [2, 3, 4],
  )
  await until(() => texts(bob, r).length === 4 && texts(ann, r).length === 4, 'shown')
  assert.deepEqual(texts(bob, r), ['before', 'one', 'two', 'three'])
  assert.deepEqual(texts(ann, r), ['before', 'one', 'two', 'three'])
  assert.deepEqual(
    (await stored(server.url, r)).map((m) => m.text),
    ['before', 'one', 'two', 'three'],
  )
  assert.equal(ann.pending().length, 0)
  assert.ok(ann.outboxEvents.some((e) => e.text === 'two' && e.state === 'sent'))
})

test('stored but the ack was lost: resent after the reconnect with the same clientId, stored once', async () => {
  const r = fresh()
  const ann = sdk({ url: lb.url, name: 'ann', ackTimeout: 800 })
  await ann.join(r)
  lb.mute() // the message reaches the server; nothing comes back
  const sent = ann.send(r, 'exactly once')
  await until(async () => (await stored(server.url, r)).length === 1, 'stored')
  await sleep(1000) // at least one resend on the muted connection
  lb.cut()
  await sleep(300)
  lb.restore()
  const ack = await sent
  assert.equal(ack.seq, 1)
  await until(() => texts(ann, r).length === 1, 'shown')
  await sleep(500)
  assert.deepEqual(texts(ann, r), ['exactly once'])
  assert.deepEqual(
    (await stored(server.url, r)).map((m) => m.text),
    ['exactly once'],
  )
})

test('back after a long absence: the catch-up pages through 700 messages, each shown once, in order', { timeout: 120000 }, async () => {
  const r = fresh()
  const ann = sdk({ url: lb.url, name: 'ann' })
  await ann.join(r)
  lb.cut()
  await until(() => ann.status.state === 'offline', 'offline')
  await post(server.url, r, 'bob', 700, 'b')
  lb.restore()
  await until(() => texts(ann, r).length === 700, '700 shown', 60000)
  assert.deepEqual(
    texts(ann, r),
    Array.from({ length: 700 }, (_, i) => `b${i + 1}`),
  )
  assertInOrderOnce(assert, ann, r)
})

test('history pages back through older messages', async () => {
  const r = fresh()
  await post(server.url, r, 'bob', 120, 'h')
  const ann = sdk({ url: server.url, name: 'ann' })
  await ann.join(r)
  await until(() => texts(ann, r).length === 50, 'the latest 50 on join')
  assert.equal(ann.seen[0].seq, 71)
  const page1 = await ann.history(r, { before: 71, limit: 50 })
  assert.deepEqual(
    page1.map((m) => m.seq),
    Array.from({ length: 50 }, (_, i) => 21 + i),
  )
  const page2 = await ann.history(r, { before: 21, limit: 50 })
  assert.deepEqual(
    page2.map((m) => m.text),
    Array.from({ length: 20 }, (_, i) => `h${i + 1}`),
  )
  assert.deepEqual(await ann.history(r, { before: 1 }), [])
})

test('a refused send fails with its code and can be retried or discarded', async () => {
  const r = fresh()
  const ann = sdk({ url: server.url, name: 'ann' })
  await ann.join(r)
  await assert.rejects(ann.send(r, 'x'.repeat(70 * 1024)), (e) => e.code === 'TOO_LARGE')
  const [failed] = ann.pending()
  assert.equal(failed.state, 'failed')
  assert.equal(failed.error.code, 'TOO_LARGE')
  ann.discard(failed.clientId)
  assert.equal((await ann.send(r, 'fine')).seq, 1)
})

// Last: it leaves the server's keyring rotated.
test('room keys: a rotation reaches the client; messages under a key no longer given are reported, not dropped', async () => {
  const r = fresh()
  const ann = sdk({ url: server.url, name: 'ann' })
  const announced = []
  ann.on('room key', (k) => announced.push(k))
  await ann.join(r)
  await ann.send(r, 'under key 1')
  writeKeyring({ primary: 2, min_decrypt: 1, keys: [{ id: 1, key: keys[0] }, { id: 2, key: keys[1] }] })
  server.child.kill('SIGHUP')
  await until(() => announced.some((k) => k.room === r && k.keyId === 2), 'room key 2')
  await ann.send(r, 'under key 2')
  await until(() => texts(ann, r).length === 2, 'both shown')
  assert.deepEqual(
    ann.seen.map((m) => [m.keyId, m.epoch, m.text]),
    [
      [1, 0, 'under key 1'],
      [2, 0, 'under key 2'],
    ],
  )
  // A rotation is a new key id in the same epoch (guest rooms stay at 0).
  assert.deepEqual(
    announced.filter((k) => k.room === r).map((k) => [k.keyId, k.epoch]),
    [
      [1, 0],
      [2, 0],
    ],
  )
  // Key 1 retired: a newcomer cannot open what it sealed, and is told so.
  if (TARGET === 'rust') {
    // The Rust server refuses a reload that retires a key stored messages
    // still need; retiring it anyway is the operator's explicit, loud
    // `keys retire --force` (crypto-shredding), which running servers pick up.
    // It also refuses while a running server still seals with key 1: the
    // SIGHUP above reaches the store's record of this server with its next
    // heartbeat, so ask again (bounded) until it has.
    let retired
    for (let i = 0; i < 20; i++) {
      retired = await keysCli(['retire', '--below', '2', '--force'], {
        dataDir: server.dataDir,
        env: { CHATSEAL_KEYRING_FILE: keyringFile },
      })
      if (retired.code === 0 || !/still seals/.test(retired.stderr)) break
      await sleep(500)
    }
    assert.equal(retired.code, 0, retired.stderr)
    await until(() => server.log.some((l) => l.includes('keyring reloaded') && l.includes('min_decrypt=2')), 'the retirement applied')
  } else {
    writeKeyring({ primary: 2, min_decrypt: 2, keys: [{ id: 1, key: keys[0] }, { id: 2, key: keys[1] }] })
    server.child.kill('SIGHUP')
    await sleep(500)
  }
  const carol = sdk({ url: server.url, name: 'carol' })
  await carol.join(r, { since: 0 })
  await until(() => carol.seen.length === 2, 'both reported')
  assert.deepEqual(
    carol.seen.map((m) => [m.seq, m.text, m.error && m.error.code]),
    [
      [1, null, 'NO_KEY'],
      [2, 'under key 2', undefined],
    ].map(([s, t, c]) => [s, t, c ?? null]),
  )
})
