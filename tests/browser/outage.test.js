'use strict'
// The outage race: a person types while the server is down. The message
// must be stored exactly once after the server is back, and shown once on
// both pages. (The first browser client resent it before joining its room
// again and lost it to FORBIDDEN.)
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { start } = require('../conformance/lib/servers')
const { connect, openMessage } = require('../conformance/lib/client')
const { launch, signIn, joinRoom, say, line, shot, CLIENT } = require('./lib/pages')

const TARGET = process.env.CHATSEAL_TARGET || 'rust'
let server
let browser

before(async () => {
  server = await start(TARGET, { extraArgs: CLIENT })
  browser = await launch()
})

after(async () => {
  await browser?.close()
  await server?.stop()
})

/** The room's stored messages, opened, read by a separate client. */
async function stored(room) {
  const reader = await connect(server.url, { name: 'auditor' })
  try {
    const ack = await reader.timeout(5000).emitWithAck('join', { room, since: 0 })
    return Promise.all(ack.missed.map(async (m) => ({ sender: m.sender, text: await openMessage(ack.keys, m) })))
  } finally {
    reader.close()
  }
}

test('typed during an outage of the server: stored once, shown once on both pages', { timeout: 120000 }, async () => {
  const ann = await signIn(browser, server.url, 'ann')
  const bob = await signIn(browser, server.url, 'bob')
  await joinRoom(ann, 'ops')
  await joinRoom(bob, 'ops')
  await say(ann, 'before the outage')
  await bob.waitForSelector(line('ann', 'before the outage'), { timeout: 10000 })

  const address = new URL(server.url).host
  await server.stop('SIGKILL')
  await ann.waitForSelector('#status[data-state="offline"]', { timeout: 10000 })
  await say(ann, 'typed while the server was down')
  await ann.waitForSelector('#outbox li[data-state="pending"]:has-text("typed while the server was down")')
  await ann.waitForSelector('#banner:visible:has-text("Offline")')
  await shot(ann, 'outage-offline.png')
  await new Promise((r) => setTimeout(r, 1500))
  server = await start(TARGET, { extraArgs: CLIENT, dataDir: server.dataDir, listen: address })

  for (const page of [ann, bob]) {
    await page.waitForSelector(line('ann', 'typed while the server was down'), { timeout: 30000 }).catch(async (err) => {
      // Enough of both pages' state to tell a stuck reconnect from a lost message.
      const state = async (p) =>
        JSON.stringify({
          status: await p.getAttribute('#status', 'data-state'),
          banner: await p.textContent('#banner'),
          outbox: await p.textContent('#outbox'),
          error: await p.textContent('#chat-error'),
        })
      throw new Error(`${err.message}\nann: ${await state(ann)}\nbob: ${await state(bob)}\nserver log:\n${server.log.slice(-20).join('\n')}`)
    })
  }
  // Settled: nothing pending, and no second copy arrives.
  await ann.waitForSelector('#outbox li', { state: 'detached', timeout: 10000 }).catch(() => {})
  await new Promise((r) => setTimeout(r, 1500))
  for (const page of [ann, bob]) assert.equal(await page.locator(line('ann', 'typed while the server was down')).count(), 1)
  const texts = (await stored('ops')).filter((m) => m.text === 'typed while the server was down')
  assert.equal(texts.length, 1, 'stored exactly once')
  await shot(ann, 'outage-ann.png')
  assert.deepEqual([...ann.errors, ...bob.errors], [])
})

test('closed during the outage and opened again: the unsent message survives and is stored once', { timeout: 120000 }, async () => {
  const cy = await signIn(browser, server.url, 'cy')
  await joinRoom(cy, 'ops2')
  const address = new URL(server.url).host
  await server.stop('SIGKILL')
  await cy.waitForSelector('#status[data-state="offline"]', { timeout: 10000 })
  await say(cy, 'typed, then the tab was closed')
  await cy.waitForSelector('#outbox li[data-state="pending"]')
  // The tab goes away with the message unsent; the same browser opens the page again.
  const context = cy.context()
  await cy.close()
  server = await start(TARGET, { extraArgs: CLIENT, dataDir: server.dataDir, listen: address })
  const again = await context.newPage()
  again.errors = []
  again.on('pageerror', (e) => again.errors.push(e.message))
  await again.goto(server.url + '/')
  await again.waitForSelector(line('cy', 'typed, then the tab was closed'), { timeout: 30000 })
  await again.waitForSelector('#outbox li', { state: 'detached', timeout: 10000 })
  assert.equal(await again.textContent('#room-title'), 'ops2')
  assert.equal(await again.locator(line('cy', 'typed, then the tab was closed')).count(), 1)
  const texts = (await stored('ops2')).filter((m) => m.text === 'typed, then the tab was closed')
  assert.equal(texts.length, 1, 'stored exactly once')
  assert.deepEqual(again.errors, [])
})
