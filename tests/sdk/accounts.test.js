'use strict'
// The SDK with accounts (Rust server): history over the HTTP API with the
// token, a private room that refuses a non-member with FORBIDDEN, and its
// key epochs (a reset, a removal) as a member's app sees them.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { start } = require('../conformance/lib/servers')
const { sdk, closeAll, until, texts } = require('./lib/util')

let server

before(async () => {
  server = await start('rust', { limits: { ratePerSec: 100000, rateBurst: 100000, maxMessageBytes: 65536 } })
})

after(async () => {
  closeAll()
  await server?.stop()
})

async function http(path, body, token, method = 'POST') {
  const headers = { 'content-type': 'application/json' }
  if (token) headers.authorization = `Bearer ${token}`
  const res = await fetch(server.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const json = await res.json()
  if (!res.ok) throw new Error(`${path}: ${JSON.stringify(json)}`)
  return json
}

async function login(username) {
  const password = `${username} has a long password`
  await http('/api/register', { username, password })
  return (await http('/api/login', { username, password })).token
}

test('history over HTTP with the token, page by page, opened', { timeout: 60000 }, async () => {
  const vera = sdk({ url: server.url, token: await login('vera') })
  await vera.join('archive')
  for (let i = 1; i <= 120; i++) await vera.send('archive', `v${i}`)
  const walt = sdk({ url: server.url, token: await login('walt') })
  const httpCalls = []
  const realFetch = globalThis.fetch
  globalThis.fetch = (url, init) => {
    httpCalls.push(String(url))
    return realFetch(url, init)
  }
  try {
    await walt.join('archive')
    await until(() => texts(walt, 'archive').length === 50, 'latest 50')
    const older = await walt.history('archive')
    assert.deepEqual(
      older.map((m) => m.text),
      Array.from({ length: 50 }, (_, i) => `v${21 + i}`),
    )
    const oldest = await walt.history('archive', { before: 21, limit: 500 })
    assert.deepEqual(
      oldest.map((m) => m.seq),
      Array.from({ length: 20 }, (_, i) => i + 1),
    )
  } finally {
    globalThis.fetch = realFetch
  }
  assert.ok(httpCalls.length === 2 && httpCalls.every((u) => u.includes('/api/rooms/archive/messages?before=')), httpCalls.join('\n'))
  assert.ok(walt.seen.every((m) => !m.own) && vera.seen.every((m) => m.own))
})

test('a private room: members in, others refused with FORBIDDEN', async () => {
  const token = await login('xena')
  await http('/api/rooms', { name: 'inner', private: true }, token)
  const xena = sdk({ url: server.url, token })
  await xena.join('inner')
  await xena.send('inner', 'members only')
  const yuri = sdk({ url: server.url, token: await login('yuri') })
  await assert.rejects(yuri.join('inner'), (e) => e.code === 'FORBIDDEN')
  assert.deepEqual(yuri.joinedRooms(), [])
  await assert.rejects(yuri.send('inner', 'let me in'), (e) => e.code === 'NOT_JOINED')
})

test('key epochs: a reset reaches members as a `room key` of the new epoch; every epoch opens, for a newcomer too', { timeout: 60000 }, async () => {
  const room = 'epochal'
  const [owner, peteToken, quinToken] = [await login('olga'), await login('pete'), await login('quin')]
  await http('/api/rooms', { name: room, private: true }, owner)
  for (const username of ['pete', 'quin']) await http(`/api/rooms/${room}/members`, { username }, owner)
  const olga = sdk({ url: server.url, token: owner })
  const pete = sdk({ url: server.url, token: peteToken })
  const peteKeys = []
  pete.on('room key', (k) => peteKeys.push(k))
  await olga.join(room)
  await pete.join(room)
  // A private room seals under epoch 1 from its creation.
  await olga.send(room, 'one')
  await until(() => texts(pete, room).length === 1, 'the first message')
  const reset = await http(`/api/rooms/${room}/reset-key`, {}, owner)
  assert.deepEqual(reset, { room, epoch: 2 })
  await until(() => peteKeys.some((k) => k.room === room && k.epoch === 2), 'the epoch 2 key')
  await olga.send(room, 'two')
  await until(() => texts(pete, room).length === 2, 'the second message')
  // Away while the room begins epoch 3: the catch-up's join brings its key.
  pete.socket.disconnect()
  assert.equal((await http(`/api/rooms/${room}/reset-key`, {}, owner)).epoch, 3)
  await olga.send(room, 'three')
  pete.socket.connect()
  await until(() => texts(pete, room).length === 3, 'the third message, after the reconnect')
  assert.deepEqual(
    pete.seen.map((m) => [m.seq, m.epoch, m.text, m.error]),
    [
      [1, 1, 'one', null],
      [2, 2, 'two', null],
      [3, 3, 'three', null],
    ],
  )
  // A member who joins now gets every epoch's key: the whole history opens.
  const quin = sdk({ url: server.url, token: quinToken })
  await quin.join(room)
  await until(() => texts(quin, room).length === 3, 'the history')
  assert.deepEqual(texts(quin, room), ['one', 'two', 'three'])
  // Removed: pete is out, and the epoch begun by the removal is not his.
  const removed = await http(`/api/rooms/${room}/members/pete`, undefined, owner, 'DELETE')
  assert.deepEqual(removed, { ok: true, epoch: 4 })
  await olga.send(room, 'four')
  await until(() => texts(quin, room).length === 4, 'the fourth, to quin')
  assert.equal(quin.seen[3].epoch, 4)
  assert.ok(!peteKeys.some((k) => k.epoch === 4), 'no epoch 4 key for the removed member')
  assert.equal(texts(pete, room).length, 3)
})
