'use strict'
// Slow readers: a socket that stops reading is disconnected once the
// packets queued for it pass CHATSEAL_SOCKET_BUFFER (it catches up with
// `since` after reconnecting), and nobody else notices. Both servers.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { start, LIMITS } = require('./lib/servers')
const { connect, request, sleep } = require('./lib/client')

const TARGET = process.env.CHATSEAL_TARGET || 'rust'

test('CHATSEAL_SOCKET_BUFFER: a reader that stops reading is disconnected past it', async () => {
  const small = await start(TARGET, {
    env: { CHATSEAL_SOCKET_BUFFER: '16' },
    limits: { ...LIMITS, ratePerSec: 1000, rateBurst: 1000 },
  })
  const open = []
  try {
    const reader = await connect(small.url, { name: 'stalled' })
    const writer = await connect(small.url, { name: 'writer' })
    open.push(reader, writer)
    await request(reader, 'join', { room: 'firehose' })
    await request(writer, 'join', { room: 'firehose' })
    const gone = new Promise((resolve) => reader.once('disconnect', resolve))
    const tcp = reader.io.engine.transport.ws._socket
    tcp.pause()
    // Far more than the kernel's socket buffers hold, then the server's
    // queue: 300 packets of 48 KiB, well under the default 4096 packets.
    const text = 'w'.repeat(48 * 1024)
    // 5 in flight at a time: the writer, in the room too, gets each batch's
    // acks and then its own copies at once (10 packets, under the 16).
    for (let i = 0; i < 60; i++) {
      await Promise.all(Array.from({ length: 5 }, () => request(writer, 'chat message', { message: text, room: 'firehose' })))
    }
    await sleep(1500) // the servers look at queues about once a second
    tcp.resume()
    const reason = await Promise.race([gone, sleep(10000).then(() => 'still connected')])
    assert.notEqual(reason, 'still connected', 'the stalled reader is disconnected')
    // The writer was never affected.
    assert.equal((await request(writer, 'chat message', { message: 'on', room: 'firehose' })).ok, true)
  } finally {
    for (const s of open) s.close()
    await small.stop()
  }
})
