'use strict'
// The Node server's own parts: bounded history, the rate limiter, ids and
// configuration. The protocol itself is checked by tests/conformance.
const test = require('node:test')
const assert = require('node:assert/strict')
const { History, sizeOf } = require('../lib/history')
const { contextText, keyIdOf } = require('../lib/sealing')
const { chatContext, Keyring, Sealer } = require('..')
const { RateLimiter } = require('../lib/rate')
const { uuidv7 } = require('../lib/uuid')
const { load } = require('../lib/config')
const validate = require('../lib/validate')

const msg = (room, n) => ({ id: `id${n}`, room, sender: 'ann', ts: n, keyId: 1, message: 'x' })

test('history numbers per room and keeps only the last perRoom messages', () => {
  const h = new History({ perRoom: 3, maxRooms: 10 })
  for (let i = 1; i <= 5; i++) h.append(msg('a', i), null)
  h.append(msg('b', 1), null)
  assert.equal(h.latestSeq('a'), 5)
  assert.equal(h.latestSeq('b'), 1)
  assert.deepEqual(h.since('a', 0, 100).map((m) => m.seq), [3, 4, 5])
  assert.deepEqual(h.since('a', 3, 100).map((m) => m.seq), [4, 5])
  assert.deepEqual(h.since('a', 0, 1).map((m) => m.seq), [3])
  assert.deepEqual(h.latest('a', 2).map((m) => m.seq), [4, 5])
  assert.deepEqual(h.since('none', 0, 10), [])
})

test('history stays exact and bounded across many trims', () => {
  const h = new History({ perRoom: 3, maxRooms: 10 })
  for (let i = 1; i <= 100; i++) {
    h.append(msg('a', i), null)
    assert.deepEqual(h.since('a', 0, 100).map((m) => m.seq), [i - 2, i - 1, i].filter((s) => s > 0))
    assert.deepEqual(h.latest('a', 10).map((m) => m.seq), [i - 2, i - 1, i].filter((s) => s > 0))
    // Memory: never more than perRoom plus the trimming slack.
    assert.ok(h.rooms.get('a').messages.length <= 3 + h.slack)
  }
  assert.deepEqual(h.since('a', 98, 100).map((m) => m.seq), [99, 100])
  assert.deepEqual(h.latest('a', 0), [])
})

test('history is bounded in bytes, per room and in all, and keeps each room\'s seq', () => {
  const big = (room, n) => ({ id: `id${n}`, room, sender: 'ann', ts: n, keyId: 1, message: 'e'.repeat(64 * 1024) })
  const MiB = 1024 * 1024
  const h = new History({ perRoom: 1000, roomBytes: 1 * MiB, totalBytes: 3 * MiB })
  // 64 KiB messages: 1,000 of them per room by count, far over the budgets.
  for (let i = 1; i <= 200; i++) {
    for (const room of ['a', 'b', 'c', 'd', 'e']) h.append(big(room, i), null)
    assert.ok(h.bytes <= 3 * MiB, `total ${h.bytes}`)
    for (const r of h.rooms.values()) assert.ok(r.bytes <= 1 * MiB, `room ${r.bytes}`)
  }
  // Each room still numbers on; what is kept is its newest, in order.
  for (const room of ['a', 'b', 'c', 'd', 'e']) assert.equal(h.latestSeq(room), 200)
  const kept = h.since('e', 0, 1000).map((m) => m.seq)
  assert.ok(kept.length >= 1)
  assert.deepEqual(kept, Array.from({ length: kept.length }, (_, i) => 201 - kept.length + i))
  assert.deepEqual(h.latest('e', 2).map((m) => m.seq), [199, 200])
  // The total budget drops the room written to longest ago first.
  const oldest = h.since('a', 0, 1000).length
  const newest = h.since('e', 0, 1000).length
  assert.ok(oldest <= newest, `a keeps ${oldest}, e ${newest}`)
  // The sum kept is the sum counted.
  let sum = 0
  for (const r of h.rooms.values()) for (let i = r.head; i < r.messages.length; i++) sum += sizeOf(r.messages[i])
  assert.equal(sum, h.bytes)
})

test('history: a single message over the room budget is still kept (the newest always is)', () => {
  const h = new History({ roomBytes: 100, totalBytes: 100 })
  h.append(msg('a', 1), null)
  h.append({ ...msg('a', 2), message: 'y'.repeat(1000) }, null)
  assert.deepEqual(h.since('a', 0, 10).map((m) => m.seq), [2])
  h.append(msg('b', 1), null)
  assert.deepEqual(h.since('a', 0, 10), [])
  assert.equal(h.latestSeq('a'), 2)
  assert.deepEqual(h.since('b', 0, 10).map((m) => m.seq), [1])
})

test('the server seals with the chat context of DESIGN §2, as text', () => {
  for (const [room, id, sender] of [['general', uuidv7(), 'ann'], ['café-Ω', 'id-1', 'zoë 李']]) {
    assert.ok(Buffer.from(contextText(room, id, sender), 'utf8').equals(chatContext(room, id, sender)))
  }
})

test('the key id the server stores is the one in the envelope\'s header', () => {
  const keyring = Keyring.generate()
  keyring.rotate()
  keyring.rotate()
  const sealer = new Sealer(keyring)
  const envelope = sealer.encrypt('hi', 'lobby', 'ctx')
  assert.equal(keyIdOf(envelope), 3)
  assert.equal(keyIdOf(envelope), Buffer.from(envelope, 'base64').readUInt32BE(2))
  // Every key id, the top bit and the byte boundaries included.
  for (const id of [0, 1, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff]) {
    const header = Buffer.alloc(18)
    header.writeUInt32BE(id, 2)
    assert.equal(keyIdOf(header.toString('base64')), id)
  }
})

test('an envelope without a readable header is refused as UNAVAILABLE, not stored', () => {
  // What a remote /encrypt might answer: too short, not base64, URL-safe
  // base64, non-ASCII.
  for (const bad of ['', 'AQAAAA', 'AQAA*AAB', 'AQAA-AAB', 'AQAA_AAB', 'AQAAAAé=', 'AQAAAA\u{1F600}']) {
    assert.throws(() => keyIdOf(bad), { code: 'UNAVAILABLE' }, JSON.stringify(bad))
  }
})

test('a kept message has the fields of docs/protocol.md and nothing the caller added', () => {
  const h = new History()
  const stored = h.append({ ...msg('a', 1), epoch: 0, extra: 'not kept' }, null)
  assert.deepEqual(Object.keys(stored), ['id', 'room', 'sender', 'ts', 'keyId', 'epoch', 'message', 'seq'])
  assert.deepEqual(stored, { id: 'id1', room: 'a', sender: 'ann', ts: 1, keyId: 1, epoch: 0, message: 'x', seq: 1 })
})

test('history forgets the least recently used room past maxRooms', () => {
  const h = new History({ perRoom: 10, maxRooms: 2 })
  h.append(msg('a', 1), null)
  h.append(msg('b', 1), null)
  h.append(msg('a', 2), null) // a is now the most recent
  h.append(msg('c', 1), null) // b goes
  assert.equal(h.latestSeq('b'), 0)
  assert.equal(h.latestSeq('a'), 2)
  assert.equal(h.latestSeq('c'), 1)
})

test('a forgotten room written again never reuses a seq (one historyId, one meaning per seq)', () => {
  const h = new History({ perRoom: 10, maxRooms: 2 })
  for (let i = 1; i <= 5; i++) h.append(msg('x', i), null) // x: seqs 1..5
  h.append(msg('y', 1), null)
  h.append(msg('z', 1), null) // x goes
  assert.equal(h.latestSeq('x'), 0)
  const again = h.append(msg('x', 6), null)
  assert.ok(again.seq > 5, `seq ${again.seq} was used before`)
  // The listing follows rooms coming and going, in name order.
  assert.deepEqual(h.list('', 10).map((r) => r.name), ['x', 'z'])
  assert.deepEqual(h.list('x', 10).map((r) => r.name), ['z'])
})

test('dedup returns the first ack per (room, sender, clientId), bounded', () => {
  const h = new History({ maxClientIds: 2 })
  const first = h.append(msg('a', 1), 'c1')
  assert.deepEqual(h.duplicate('a', 'ann', 'c1'), { ok: true, id: first.id, seq: 1, ts: 1 })
  assert.equal(h.duplicate('a', 'bob', 'c1'), undefined)
  // The same clientId in another room is another message.
  assert.equal(h.duplicate('b', 'ann', 'c1'), undefined)
  assert.equal(h.duplicate('a', 'ann', null), undefined)
  h.append(msg('a', 2), 'c2')
  h.append(msg('a', 3), 'c3')
  assert.equal(h.duplicate('a', 'ann', 'c1'), undefined)
  assert.equal(h.duplicate('a', 'ann', 'c3').seq, 3)
})

test('the rate limiter allows a burst, then the sustained rate', () => {
  let now = 0
  const r = new RateLimiter(10, 3, () => now)
  assert.deepEqual([r.take(), r.take(), r.take(), r.take()], [true, true, true, false])
  now += 100 // one token per 100 ms
  assert.equal(r.take(), true)
  assert.equal(r.take(), false)
  now += 10000
  assert.deepEqual([r.take(), r.take(), r.take(), r.take()], [true, true, true, false])
})

test('ids are UUID v7 and sort by time', () => {
  const a = uuidv7()
  assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  assert.equal(parseInt(a.replace(/-/g, '').slice(0, 12), 16) <= Date.now(), true)
  const many = new Set(Array.from({ length: 1000 }, uuidv7))
  assert.equal(many.size, 1000)
})

test('configuration: the Rust server\'s variables and defaults; bad values refused', () => {
  const c = load({})
  assert.deepEqual(c.listen, { host: '127.0.0.1', port: 3000 })
  assert.equal(c.maxMessageBytes, 65536)
  // Raised to 6 × the message limit + 4 KiB (388 KiB): every admitted message fits a packet.
  assert.equal(c.maxPayloadBytes, 6 * 65536 + 4096)
  assert.equal(load({ CHATSEAL_LISTEN: '[::1]:0' }).listen.host, '::1')
  assert.equal(load({ CHATSEAL_ALLOW_GUESTS: 'false' }).allowGuests, false)
  // As on the Rust server and in the README: no guests unless asked for.
  assert.equal(c.allowGuests, false)
  assert.equal(load({ CHATSEAL_ALLOW_GUESTS: 'true' }).allowGuests, true)
  assert.equal(c.socketBuffer, 4096)
  assert.equal(load({ CHATSEAL_SOCKET_BUFFER: '100' }).socketBuffer, 100)
  assert.equal(c.historyBytes, 64 * 1024 * 1024)
  assert.equal(c.historyRoomBytes, 8 * 1024 * 1024)
  assert.throws(() => load({ CHATSEAL_RATE_PER_SEC: 'fast' }), /CHATSEAL_RATE_PER_SEC/)
  assert.throws(() => load({ CHATSEAL_LISTEN: 'nowhere' }), /CHATSEAL_LISTEN/)
})

test('payload validation mirrors the Rust server', () => {
  assert.deepEqual(validate.sendRequest('hi', 10), { message: 'hi', room: 'lobby', clientId: null })
  assert.deepEqual(validate.sendRequest({ message: 'hi', room: null }, 10).room, 'lobby')
  assert.throws(() => validate.sendRequest({ message: 'é'.repeat(6) }, 10), { code: 'TOO_LARGE' })
  assert.throws(() => validate.roomRequest({ room: 'r', since: 1.5 }), { code: 'BAD_REQUEST' })
  assert.throws(() => validate.roomRequest({ room: 'bell\u0007' }), { code: 'BAD_REQUEST' })
  assert.equal(validate.roomRequest({ room: 'x'.repeat(64) }).room.length, 64)
  assert.throws(() => validate.guestName('ann smith'), { code: 'BAD_REQUEST' })
  // Lone surrogates would all become U+FFFD (one room key for all of them).
  for (const room of ['a\ud800', '\udc00b', 'x\udfff\ud800']) {
    assert.throws(() => validate.roomRequest({ room }), { code: 'BAD_REQUEST' })
    assert.throws(() => validate.sendRequest({ message: 'm', room }, 10), { code: 'BAD_REQUEST' })
  }
  assert.throws(() => validate.sendRequest({ message: 'a\ud800' }, 10), { code: 'BAD_REQUEST' })
  assert.throws(() => validate.sendRequest({ message: 'm', clientId: '\ud800' }, 10), { code: 'BAD_REQUEST' })
  assert.equal(validate.roomRequest({ room: 'emoji-\ud83d\ude00' }).room, 'emoji-😀')
})
