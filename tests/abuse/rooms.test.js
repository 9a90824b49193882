'use strict'
// Issue 15, items 10, 11 and 16: rooms per socket, join and catch-up rates,
// the size of a join's ack, and slow readers.
const test = require('node:test')
const assert = require('node:assert/strict')
const { start, http, rawConnect, connect, ask, metric, sleep, until } = require('./lib')

// The slow-reader tests send as fast as acks come back: a rate limit the
// harness passes as flags (which win over the environment) would refuse most
// of it, and whether the reader fell behind would depend on the machine's speed.
const FAST = { ratePerSec: 100000, rateBurst: 100000, maxMessageBytes: 64 * 1024 }

test('rooms per socket are capped; joins are rate-limited', { timeout: 60000 }, async () => {
  const server = await start('rust', {
    env: { CHATSEAL_MAX_ROOMS_PER_SOCKET: '4', CHATSEAL_JOIN_BURST: '6', CHATSEAL_JOIN_PER_SEC: '1' },
  })
  try {
    const s = await connect(server.url, { name: 'ann' })
    for (const room of ['a', 'b', 'c']) assert.equal((await ask(s, 'join', { room })).ok, true, room)
    const over = await ask(s, 'join', { room: 'd' })
    assert.equal(over.ok, false)
    assert.equal(over.error.code, 'TOO_LARGE')
    // A room it is in already does not count twice.
    assert.equal((await ask(s, 'join', { room: 'a' })).ok, true)
    assert.equal((await ask(s, 'leave', { room: 'c' })).ok, true)
    assert.equal((await ask(s, 'join', { room: 'd' })).ok, true)
    // Six joins spent; the seventh within the second is refused.
    const fast = await ask(s, 'join', { room: 'd' })
    assert.equal(fast.ok, false)
    assert.equal(fast.error.code, 'RATE_LIMITED')
    s.close()
  } finally {
    await server.stop()
  }
})

test("a join's missed is paged by bytes; catch-ups are rate-limited", { timeout: 60000 }, async () => {
  const server = await start('rust', {
    env: { CHATSEAL_MAX_ACK_BYTES: '100000', CHATSEAL_CATCH_UP_BURST: '2', CHATSEAL_CATCH_UP_PER_SEC: '1' },
  })
  try {
    const s = await connect(server.url, { name: 'ann' })
    await ask(s, 'join', { room: 'big' })
    for (let i = 0; i < 10; i++) {
      const r = await ask(s, 'chat message', { room: 'big', message: 'x'.repeat(30000), clientId: `c${i}` })
      assert.equal(r.ok, true, JSON.stringify(r))
    }
    const page = await ask(s, 'join', { room: 'big', since: 0 })
    assert.equal(page.ok, true)
    const bytes = JSON.stringify(page.missed).length
    assert.ok(page.missed.length >= 1 && page.missed.length < 10, `${page.missed.length} messages`)
    assert.ok(bytes <= 100000, `${bytes} bytes`)
    assert.equal(page.latestSeq, 10)
    // Read on from the last seq until caught up.
    const seqs = page.missed.map((m) => m.seq)
    let next = await ask(s, 'join', { room: 'big', since: seqs.at(-1) })
    seqs.push(...next.missed.map((m) => m.seq))
    // The burst of two catch-ups is spent.
    next = await ask(s, 'join', { room: 'big', since: seqs.at(-1) })
    assert.equal(next.ok, false)
    assert.equal(next.error.code, 'RATE_LIMITED')
    // Without since: the latest, within the same budget.
    const latest = await ask(s, 'join', { room: 'big' })
    assert.ok(JSON.stringify(latest.missed).length <= 100000)
    assert.equal(latest.missed.at(-1).seq, 10)
    s.close()
  } finally {
    await server.stop()
  }
})

test('a slow reader is disconnected at once, counted and logged once', { timeout: 60000 }, async () => {
  const server = await start('rust', {
    env: { CHATSEAL_SOCKET_BUFFER: '16' },
    limits: FAST,
  })
  try {
    // A polling reader that connects and then never polls again.
    const open = await http(server.url, 'GET', '/socket.io/?EIO=4&transport=polling')
    const sid = JSON.parse(open.text.slice(1)).sid
    const path = `/socket.io/?EIO=4&transport=polling&sid=${sid}`
    const postText = (text) =>
      new Promise((resolve, reject) => {
        const req = require('node:http').request(new URL(path, server.url), { method: 'POST', headers: { 'content-type': 'text/plain;charset=UTF-8' } }, (res) => {
          res.resume()
          res.on('end', () => resolve(res.statusCode))
        })
        req.on('error', reject)
        req.end(text)
      })
    assert.equal(await postText('40'), 200)
    // Its connect answer (a ping may come first on a busy machine: a
    // polling client answers it, as this one does).
    let connected = ''
    for (let i = 0; i < 5 && !/(^|\x1e)40/.test(connected); i++) {
      const r = await http(server.url, 'GET', path)
      connected += '\x1e' + r.text
      if (/(^|\x1e)2($|\x1e)/.test(r.text)) await postText('3')
    }
    assert.match(connected, /(^|\x1e)40/)
    const writer = await connect(server.url, { name: 'bob' })
    for (let i = 0; i < 60; i++) await ask(writer, 'chat message', { message: `m${i}` })
    await until(() => server.log.some((l) => l.includes('reader too slow')), 5000, 'the slow-reader log line')
    for (let i = 0; i < 40; i++) await ask(writer, 'chat message', { message: `n${i}` })
    await sleep(300)
    assert.equal(server.log.filter((l) => l.includes('reader too slow')).length, 1, 'logged once')
    assert.equal(await metric(server.url, 'chatseal_slow_readers_disconnected_total'), 1, 'counted once')
    assert.ok(!server.log.some((l) => l.includes(sid)), 'the sid is never logged')
    // Its next polls drain what was queued (16 packets at most, never the
    // 100 sent) and end with the disconnect packet.
    let got = ''
    for (let i = 0; i < 5 && !/(^|\x1e)41/.test(got); i++) {
      const r = await http(server.url, 'GET', path)
      if (r.status !== 200) break
      got += '\x1e' + r.text
    }
    assert.match(got, /(^|\x1e)41/, 'a disconnect packet ends the socket')
    const delivered = got.split('\x1e').filter((p) => p.startsWith('42["chat message"')).length
    assert.ok(delivered <= 16, `${delivered} messages queued for the slow reader`)
    writer.close()
  } finally {
    await server.stop()
  }
})

/** A client frame (masked text), as RFC 6455 wants it. */
function wsFrame(text) {
  const payload = Buffer.from(text)
  const mask = Buffer.from([1, 2, 3, 4])
  const masked = payload.map((b, i) => b ^ mask[i % 4])
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked])
}

test('a slow WebSocket reader is cut off at once', { timeout: 90000 }, async () => {
  const server = await start('rust', {
    env: { CHATSEAL_SOCKET_BUFFER: '16' },
    limits: FAST,
  })
  try {
    // A WebSocket client that connects, then stops reading: the kernel's
    // buffers fill, then the server's queue.
    const raw = await rawConnect(server.url)
    raw.write(
      'GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n' +
        'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    )
    let seen = ''
    raw.on('data', (d) => (seen += d.toString('latin1')))
    await until(() => seen.includes('"sid"'), 5000, 'the Engine.IO open packet')
    raw.write(wsFrame('40'))
    await until(() => /40\{"sid"/.test(seen), 5000, 'the Socket.IO connect')
    raw.pause()
    const writer = await connect(server.url, { name: 'bob' })
    assert.equal(await metric(server.url, 'chatseal_connections'), 2)
    const big = 'y'.repeat(60000)
    for (let i = 0; i < 400 && !server.log.some((l) => l.includes('reader too slow')); i++) {
      await ask(writer, 'chat message', { message: big })
    }
    assert.ok(server.log.some((l) => l.includes('reader too slow')), 'the reader fell behind')
    // Disconnected at once: only the writer is left.
    let connections = 2
    for (let i = 0; i < 20 && connections !== 1; i++) {
      await sleep(100)
      connections = await metric(server.url, 'chatseal_connections')
    }
    assert.equal(connections, 1, 'the slow reader is disconnected')
    assert.equal(await metric(server.url, 'chatseal_slow_readers_disconnected_total'), 1)
    writer.close()
    raw.destroy()
  } finally {
    await server.stop()
  }
})

test("an upgraded slow reader's handshake connection is not cut", { timeout: 90000 }, async () => {
  const server = await start('rust', {
    env: { CHATSEAL_SOCKET_BUFFER: '16' },
    limits: FAST,
  })
  try {
    // The default transports: a polling handshake on a kept-alive
    // connection (behind a proxy, it may carry other clients' requests)...
    const first = await rawConnect(server.url)
    let onFirst = ''
    first.on('data', (d) => (onFirst += d.toString('latin1')))
    first.write('GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n')
    await until(() => /"sid":"[^"]+"/.test(onFirst), 5000, 'the Engine.IO open packet')
    const sid = onFirst.match(/"sid":"([^"]+)"/)[1]
    const post = await new Promise((resolve, reject) => {
      const path = `/socket.io/?EIO=4&transport=polling&sid=${sid}`
      const req = require('node:http').request(new URL(path, server.url), { method: 'POST', agent: false, headers: { 'content-type': 'text/plain;charset=UTF-8' } }, (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode))
      })
      req.on('error', reject)
      req.end('40')
    })
    assert.equal(post, 200)
    // ...then the upgrade to a WebSocket, which stops reading.
    const ws = await rawConnect(server.url)
    let onWs = ''
    ws.on('data', (d) => (onWs += d.toString('latin1')))
    ws.write(
      `GET /socket.io/?EIO=4&transport=websocket&sid=${sid} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n` +
        'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    )
    await until(() => onWs.includes('101'), 5000, 'the WebSocket upgrade')
    ws.write(wsFrame('2probe'))
    await until(() => onWs.includes('3probe'), 5000, 'the probe answer')
    ws.write(wsFrame('5'))
    await sleep(200)
    ws.pause()
    const writer = await connect(server.url, { name: 'bob' })
    const big = 'y'.repeat(60000)
    for (let i = 0; i < 400 && !server.log.some((l) => l.includes('reader too slow')); i++) {
      await ask(writer, 'chat message', { message: big })
    }
    assert.ok(server.log.some((l) => l.includes('reader too slow')), 'the reader fell behind')
    await sleep(300)
    // The handshake's connection still serves requests.
    const before = onFirst.length
    let closed = first.destroyed
    first.on('close', () => (closed = true))
    if (!closed) first.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
    await until(() => closed || /HTTP\/1\.1 \d{3}/.test(onFirst.slice(before)), 5000, 'an answer or a close')
    assert.ok(!closed, "the handshake's connection was cut")
    writer.close()
    ws.destroy()
    first.destroy()
  } finally {
    await server.stop()
  }
})
