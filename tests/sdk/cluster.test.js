'use strict'
// Two Rust servers behind a load balancer (PostgreSQL + Redis): the server
// a client talks to is killed mid-conversation and the balancer sends it to
// the other. Nothing sent is lost or stored twice; nothing stored is shown
// twice or out of order.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { balancer } = require('./lib/balancer')
const { startCluster } = require('./lib/cluster')
const { sdk, closeAll, until, sleep, stored, texts, assertInOrderOnce } = require('./lib/util')

let cluster
let lb

before(async () => {
  cluster = await startCluster({ limits: { ratePerSec: 100000, rateBurst: 100000, maxMessageBytes: 65536 } })
  lb = await balancer(cluster.servers[0].url)
})

after(async () => {
  closeAll()
  await lb?.close()
  await cluster?.stop()
})

test('kill the server mid-conversation: the client moves to the other, nothing lost or doubled', { timeout: 120000 }, async () => {
  const [a, b] = cluster.servers
  const ann = sdk({ url: lb.url, name: 'ann' })
  const bob = sdk({ url: b.url, name: 'bob' })
  await ann.join('talk')
  await bob.join('talk')
  const sends = []
  for (let i = 1; i <= 40; i++) {
    // ann keeps typing; bob answers now and then, on the other server.
    sends.push(ann.send('talk', `ann ${i}`))
    if (i % 10 === 0) sends.push(bob.send('talk', `bob ${i / 10}`))
    if (i === 15) {
      await a.stop('SIGKILL')
      lb.point(b.url)
    }
    await sleep(50)
  }
  const acks = await Promise.all(sends)
  assert.equal(new Set(acks.map((x) => x.seq)).size, 44, 'every send stored, each under its own seq')
  const all = (await stored(b.url, 'talk')).map((m) => m.text)
  assert.equal(all.length, 44, 'stored exactly once')
  for (const reader of [ann, bob]) {
    await until(() => texts(reader, 'talk').length === 44, 'all 44 shown', 30000)
    await sleep(300)
    assert.deepEqual(texts(reader, 'talk'), all, 'the stored order, once each')
    assertInOrderOnce(assert, reader, 'talk')
  }
  const annOrder = all.filter((t) => t.startsWith('ann')).map((t) => Number(t.slice(4)))
  assert.deepEqual(annOrder, Array.from({ length: 40 }, (_, i) => i + 1), "ann's messages in the order she wrote them")
})
