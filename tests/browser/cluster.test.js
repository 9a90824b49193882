'use strict'
// Two pages on a two-server cluster (PostgreSQL + Redis): ann's page goes
// through a load balancer to server A, bob's straight to server B. A is
// killed mid-conversation and the balancer sends ann to B: every message
// stored once and shown once, in order, on both pages.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { balancer } = require('../sdk/lib/balancer')
const { startCluster } = require('../sdk/lib/cluster')
const { stored } = require('../sdk/lib/util')
const { launch, signIn, joinRoom, say, line, shot, CLIENT } = require('./lib/pages')

let cluster
let lb
let browser

before(async () => {
  cluster = await startCluster({ extraArgs: CLIENT })
  lb = await balancer(cluster.servers[0].url)
  browser = await launch()
})

after(async () => {
  await browser?.close()
  await lb?.close()
  await cluster?.stop()
})

const shown = (page) => page.$$eval('#messages li .text', (els) => els.map((e) => e.textContent))

test('one server of the cluster killed mid-conversation: nothing lost, nothing twice', { timeout: 120000 }, async () => {
  const [a, b] = cluster.servers
  const ann = await signIn(browser, lb.url, 'ann')
  const bob = await signIn(browser, b.url, 'bob')
  await joinRoom(ann, 'team')
  await joinRoom(bob, 'team')
  for (let i = 1; i <= 5; i++) await say(ann, `ann ${i}`)
  await say(bob, 'bob 1')
  await bob.waitForSelector(line('ann', 'ann 5'))
  await a.stop('SIGKILL')
  lb.point(b.url)
  for (let i = 6; i <= 10; i++) await say(ann, `ann ${i}`)
  await say(bob, 'bob 2')
  for (const page of [ann, bob]) {
    await page.waitForSelector(line('ann', 'ann 10'), { timeout: 30000 })
    await page.waitForSelector(line('bob', 'bob 2'), { timeout: 30000 })
  }
  await ann.waitForSelector('#outbox li', { state: 'detached', timeout: 10000 })
  await new Promise((r) => setTimeout(r, 1000))
  const all = (await stored(b.url, 'team')).map((m) => m.text)
  assert.equal(all.length, 12, `stored exactly once: ${all.join(', ')}`)
  for (const page of [ann, bob]) assert.deepEqual(await shown(page), all, 'shown once each, in the stored order')
  assert.deepEqual(
    all.filter((t) => t.startsWith('ann')),
    Array.from({ length: 10 }, (_, i) => `ann ${i + 1}`),
  )
  await shot(ann, 'cluster-ann.png')
  assert.deepEqual([...ann.errors, ...bob.errors], [])
})
