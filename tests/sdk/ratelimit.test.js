'use strict'
// chatseal/client against the Rust server's per-connection join limits
// (joins 5/s burst 20, catch-ups `join { since }` 2/s burst 10, defaults
// kept here): a client in more rooms than the catch-up burst, or with a
// backlog of more pages than it, gets RATE_LIMITED on its rejoin after a
// reconnect. That is transient: every room must come back, every message
// be shown once, every pending send be stored once.
const { test, before, after, afterEach } = require('node:test')
const assert = require('node:assert/strict')
const { start } = require('../conformance/lib/servers')
const { balancer } = require('./lib/balancer')
const { sdk, closeAll, until, sleep, stored, post, texts, assertInOrderOnce } = require('./lib/util')

const FAST = { ratePerSec: 100000, rateBurst: 100000, maxMessageBytes: 64 * 1024 }
// Small pages so a backlog of 160 messages is 16 catch-up pages.
const PAGE = 10
let server
let lb
let room = 0
const fresh = () => `rl${++room}`

before(async () => {
  server = await start('rust', { limits: FAST, extraArgs: ['--history-limit', String(PAGE)] })
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

test('15 rooms, connection cut: every room rejoined, every message shown once, every pending send stored once', async () => {
  const rooms = Array.from({ length: 15 }, fresh)
  const ann = sdk({ url: lb.url, name: 'ann' })
  const errors = []
  ann.on('room error', (e) => errors.push(e))
  for (const r of rooms) await ann.join(r)
  await Promise.all(rooms.map((r) => ann.send(r, `${r}:before`)))
  lb.cut()
  await until(() => ann.status.state === 'offline', 'offline')
  const sends = rooms.map((r) => ann.send(r, `${r}:queued`))
  for (const r of rooms) await post(server.url, r, 'bob', 3, `${r}:bob`)
  await sleep(300)
  lb.restore()
  const acks = await Promise.all(sends)
  assert.equal(acks.length, 15)
  const want = (r) => [`${r}:before`, `${r}:bob1`, `${r}:bob2`, `${r}:bob3`, `${r}:queued`]
  await until(() => rooms.every((r) => texts(ann, r).length >= 5), 'every room caught up', 30000)
  await sleep(500)
  assert.deepEqual(errors, [], 'no room failed')
  assert.deepEqual(ann.joinedRooms().sort(), [...rooms].sort(), 'still in every room')
  for (const r of rooms) {
    assert.deepEqual(texts(ann, r), want(r), `${r} shown once, in order`)
    assertInOrderOnce(assert, ann, r)
    assert.deepEqual(
      (await stored(server.url, r)).map((m) => m.text),
      want(r),
      `${r} stored once`,
    )
  }
  assert.equal(ann.pending().length, 0)
  // Live messages still reach every room after the reconnect.
  for (const r of rooms) await post(server.url, r, 'bob', 1, `${r}:live`)
  await until(() => rooms.every((r) => texts(ann, r).length === 6), 'live messages in every room', 15000)
})

test('a backlog of more catch-up pages than the burst is read to the end, once, in order', async () => {
  const r = fresh()
  const ann = sdk({ url: lb.url, name: 'ann' })
  const errors = []
  ann.on('room error', (e) => errors.push(e))
  await ann.join(r)
  await ann.send(r, 'first')
  lb.cut()
  await until(() => ann.status.state === 'offline', 'offline')
  const queued = ann.send(r, 'after')
  const N = PAGE * 16
  await post(server.url, r, 'bob', N, 'b')
  lb.restore()
  await queued
  const want = ['first', ...Array.from({ length: N }, (_, i) => `b${i + 1}`), 'after']
  await until(() => texts(ann, r).length >= want.length, 'backlog read', 40000)
  await sleep(500)
  assert.deepEqual(errors, [])
  assert.deepEqual(texts(ann, r), want)
  assertInOrderOnce(assert, ann, r)
})

test('history over join pages (guests) beyond the catch-up burst returns every message', async () => {
  const r = fresh()
  await post(server.url, r, 'bob', PAGE * 15, 'h')
  const ann = sdk({ url: server.url, name: 'ann' })
  await ann.join(r)
  // The join showed the last page; ask for everything before it.
  const first = ann.lastSeq(r) - PAGE + 1
  await until(() => texts(ann, r).length === PAGE, 'latest page shown')
  const older = await ann.history(r, { before: first, limit: 500 })
  assert.deepEqual(
    older.map((m) => m.text),
    Array.from({ length: first - 1 }, (_, i) => `h${i + 1}`),
  )
})
