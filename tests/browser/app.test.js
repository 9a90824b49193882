'use strict'
// The browser client as a person uses it (Rust server): a long room that
// scrolls and pages back, the "new messages" jump, a session that survives
// a reload and ends with logout, a private room and an invitation, a phone
// screen. Screenshots go to tests/artifacts/.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { start } = require('../conformance/lib/servers')
const { post } = require('../sdk/lib/util')
const { launch, newPage, signIn, joinRoom, say, line, shot, CLIENT } = require('./lib/pages')

const TARGET = process.env.CHATSEAL_TARGET || 'rust'
const FAST = { ratePerSec: 100000, rateBurst: 100000, maxMessageBytes: 65536 }
let server
let browser

before(async () => {
  server = await start(TARGET, { extraArgs: CLIENT, limits: FAST })
  browser = await launch()
})

after(async () => {
  await browser?.close()
  await server?.stop()
})

const seqs = (page) => page.$$eval('#messages li', (lis) => lis.map((li) => Number(li.dataset.seq)))
const scrollTo = (page, where) =>
  page.evaluate((w) => {
    const s = document.getElementById('scroller')
    s.scrollTop = w === 'top' ? 0 : s.scrollHeight
  }, where)

test('300 messages: the latest shown at the bottom, older pages on scrolling up, a jump to new ones', { timeout: 120000 }, async () => {
  await post(server.url, 'long', 'bob', 300, 'message number ')
  const page = await signIn(browser, server.url, 'ann')
  await joinRoom(page, 'long')
  await page.waitForSelector(line('bob', 'message number 300'))
  const first = await seqs(page)
  assert.equal(first.at(-1), 300)
  assert.ok(first.length >= 50 && first.length < 300, `the latest page first (${first.length})`)
  // The newest is in view, and the send box is on screen.
  assert.ok(await page.locator(line('bob', 'message number 300')).isVisible())
  assert.ok(await page.locator('#message').isVisible())
  const box = await page.locator('#message').boundingBox()
  assert.ok(box.y + box.height <= page.viewportSize().height, 'send box on screen')
  await shot(page, 'long-room-bottom.png')

  // Scroll up page after page to the beginning.
  for (let i = 0; i < 20 && (await seqs(page)).length < 300; i++) {
    await scrollTo(page, 'top')
    await page.waitForTimeout(300)
  }
  assert.deepEqual(
    await seqs(page),
    Array.from({ length: 300 }, (_, i) => i + 1),
    'all 300, in order, once',
  )
  await page.waitForSelector('#older:has-text("beginning of long")')
  await scrollTo(page, 'top')
  await shot(page, 'long-room-top.png')

  // Scrolled up, a new message does not yank the view: a jump button appears.
  await scrollTo(page, 'top')
  await post(server.url, 'long', 'bob', 1, 'a new one ')
  await page.waitForSelector('#jump:visible:has-text("1 new message")')
  assert.equal(await page.evaluate(() => document.getElementById('scroller').scrollTop), 0)
  await page.click('#jump')
  await page.waitForSelector('#jump', { state: 'hidden' })
  assert.ok(await page.locator(line('bob', 'a new one 1')).isVisible())
  // Own messages are marked, with their time.
  await say(page, 'mine')
  await page.waitForSelector('#messages li.own:has-text("mine") time')
  assert.equal(await page.locator('#outbox li').count(), 0)
  assert.deepEqual(page.errors, [])
})

test('a reload keeps the session, its rooms and the room shown; logout ends it', { timeout: 60000 }, async () => {
  const page = await signIn(browser, server.url, 'rhea')
  await joinRoom(page, 'kept')
  await say(page, 'still here after a reload')
  await page.waitForSelector(line('rhea', 'still here after a reload'))
  await page.reload()
  await page.waitForSelector('#status[data-state="online"]')
  assert.equal(await page.textContent('#me'), 'rhea')
  assert.equal(await page.textContent('#room-title'), 'kept')
  await page.waitForSelector(line('rhea', 'still here after a reload'))
  assert.equal(await page.locator(line('rhea', 'still here after a reload')).count(), 1)
  assert.deepEqual(await page.$$eval('#rooms li', (lis) => lis.map((li) => li.textContent)), ['lobby', 'kept'])
  await page.click('#logout')
  await page.waitForSelector('#signin:visible')
  await page.reload()
  await page.waitForSelector('#signin:visible')
  assert.equal(await page.isHidden('#chat'), true)
  assert.deepEqual(page.errors, [])
})

test('an account creates a private room and invites a member; others are kept out', { timeout: 60000 }, async () => {
  async function register(name) {
    const page = await newPage(browser)
    await page.goto(server.url + '/')
    await page.fill('#username', name)
    await page.fill('#password', `${name} has a long password`)
    await page.click('#account-form button[value="register"]')
    await page.waitForSelector('#status[data-state="online"]')
    return page
  }
  const olga = await register('olga')
  assert.equal(await olga.textContent('#me'), 'olga')
  await olga.fill('#new-room', 'secret')
  await olga.click('#create-form button')
  await olga.waitForSelector('#room-title:text-is("secret")')
  await say(olga, 'for members only')
  await olga.waitForSelector(line('olga', 'for members only'))
  const pete = await register('pete')
  const quinn = await register('quinn')
  await olga.fill('#invite-name', 'pete')
  await olga.click('#invite-form button')
  await olga.waitForSelector('#chat-error:has-text("pete can now join secret")')
  await joinRoom(pete, 'secret')
  await pete.waitForSelector(line('olga', 'for members only'))
  await quinn.fill('#room-name', 'secret')
  await quinn.click('#join-form button')
  await quinn.waitForSelector('#chat-error:has-text("FORBIDDEN")')
  assert.deepEqual(await quinn.$$eval('#rooms li', (lis) => lis.map((li) => li.textContent)), ['lobby'])
  await shot(olga, 'private-room.png')
})

test('at 375 px wide: usable, nothing overflows, rooms in a drawer', { timeout: 60000 }, async () => {
  const phone = { width: 375, height: 700 }
  await post(server.url, 'phone', 'bob', 30, 'a message long enough to wrap on a narrow phone screen, number ')
  const first = await newPage(browser, phone)
  await first.goto(server.url + '/')
  assert.ok(await first.evaluate(() => document.documentElement.scrollWidth <= 375), 'sign-in fits')
  await shot(first, 'phone-375-signin.png')
  const p = await signIn(browser, server.url, 'pia', phone)
  await joinRoom(p, 'phone')
  await p.waitForSelector(line('bob', 'number 30'))
  await say(p, 'typed on a phone')
  await p.waitForSelector(line('pia', 'typed on a phone'))
  assert.ok(await p.evaluate(() => document.documentElement.scrollWidth <= 375), 'no horizontal scroll')
  for (const sel of ['#message', '#send-form button', '#status', '#me', '#menu']) assert.ok(await p.locator(sel).isVisible(), `${sel} visible`)
  const send = await p.locator('#send-form button').boundingBox()
  assert.ok(send.x + send.width <= 375 && send.y + send.height <= 700, 'send button on screen')
  assert.equal(await p.locator('#nav').isVisible(), false, 'rooms hidden behind the menu')
  await shot(p, 'phone-375.png')
  await p.click('#menu')
  await p.waitForSelector('#nav:visible')
  await shot(p, 'phone-375-rooms.png')
  await p.click('#rooms li:text-is("lobby")')
  await p.waitForSelector('#nav', { state: 'hidden' })
  assert.equal(await p.textContent('#room-title'), 'lobby')
  assert.deepEqual(p.errors, [])
})

test('public rooms from GET /api/rooms are listed and joined with a click; a failing directory shows no list', { timeout: 60000 }, async () => {
  await post(server.url, 'plaza', 'bob', 1, 'open to all ')
  const page = await signIn(browser, server.url, 'rex')
  await page.waitForSelector('#public-rooms li:text-is("plaza")')
  await page.click('#public-rooms li:text-is("plaza")')
  await page.waitForSelector('#room-title:text-is("plaza")')
  await page.waitForSelector('#rooms li:text-is("plaza")')
  await page.waitForSelector(line('bob', 'open to all 1'))
  assert.deepEqual(page.errors, [])
  // The directory down (or a server without one): no section, no error.
  const down = await newPage(browser)
  await down.route('**/api/rooms', (route) =>
    route.request().method() === 'GET'
      ? route.fulfill({ status: 503, json: { error: { code: 'UNAVAILABLE', message: 'down' } } })
      : route.continue(),
  )
  await down.goto(server.url + '/')
  await down.fill('#guest-name', 'quin')
  await down.click('#guest-form button')
  await down.waitForSelector('#room-title:text-is("lobby")')
  await down.waitForTimeout(500)
  assert.equal(await down.locator('#public').isHidden(), true)
  assert.deepEqual(down.errors, [])
})

test('who is online and who is typing show above and below the conversation', { timeout: 60000 }, async () => {
  const uma = await signIn(browser, server.url, 'uma')
  const vic = await signIn(browser, server.url, 'vic')
  await joinRoom(uma, 'porch')
  await joinRoom(vic, 'porch')
  await uma.waitForSelector('#online:text-is("online: ~uma (you), ~vic")')
  await vic.waitForSelector('#online:text-is("online: ~uma, ~vic (you)")')
  await vic.type('#message', 'hel')
  await uma.waitForSelector('#typing:text-is("~vic is typing…")')
  await shot(uma, 'typing.png')
  await vic.press('#message', 'Enter')
  await uma.waitForSelector('#typing:text-is("")')
  await uma.waitForSelector(line('~vic', 'hel'))
  await vic.close()
  await uma.waitForSelector('#online:text-is("online: ~uma (you)")', { timeout: 10000 })
  assert.deepEqual(uma.errors, [])
})

test('a message the server refuses shows "not sent" with its code; Retry tries again, Discard drops it', { timeout: 60000 }, async () => {
  const page = await signIn(browser, server.url, 'sol')
  await say(page, 'x'.repeat(70 * 1024))
  await page.waitForSelector('#outbox li[data-state="failed"]:has-text("not sent (TOO_LARGE)")')
  await shot(page, 'failed.png')
  await page.click('#outbox li[data-state="failed"] button.retry')
  await page.waitForSelector('#outbox li[data-state="failed"]:has-text("TOO_LARGE")')
  await page.click('#outbox li[data-state="failed"] button.discard')
  await page.waitForSelector('#outbox li', { state: 'detached' })
  await say(page, 'a short one')
  await page.waitForSelector(line('sol', 'a short one'))
  assert.equal(await page.locator('#messages li').filter({ hasText: 'xxxxxxxx' }).count(), 0)
  assert.deepEqual(page.errors, [])
})
