'use strict'
// The SDK with accounts (Rust server): history over the HTTP API with the
// token, and a private room that refuses a non-member with FORBIDDEN.
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

async function http(path, body, token) {
  const headers = { 'content-type': 'application/json' }
  if (token) headers.authorization = `Bearer ${token}`
  const res = await fetch(server.url + path, { method: 'POST', headers, body: JSON.stringify(body) })
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
