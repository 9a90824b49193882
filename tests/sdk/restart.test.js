'use strict'
// A server restart (Rust: the store survives SIGKILL): what was sent while
// it was down is stored once when it is back, and the client shows the
// room from where it was — the others' messages from the gap included.
const { test, after } = require('node:test')
const assert = require('node:assert/strict')
const { start } = require('../conformance/lib/servers')
const { sdk, closeAll, until, sleep, stored, post, texts, assertInOrderOnce } = require('./lib/util')

let server

after(async () => {
  closeAll()
  await server?.stop()
})

test('killed and restarted: sends made meanwhile are stored once; the gap is caught up', { timeout: 60000 }, async () => {
  server = await start('rust')
  const ann = sdk({ url: server.url, name: 'ann' })
  await ann.join('ops')
  await ann.send('ops', 'before')
  const address = new URL(server.url).host
  await server.stop('SIGKILL')
  await until(() => ann.status.state === 'offline', 'offline')
  const sends = [ann.send('ops', 'during 1'), ann.send('ops', 'during 2')]
  await sleep(500)
  server = await start('rust', { dataDir: server.dataDir, listen: address })
  await post(server.url, 'ops', 'bob', 2, 'bob ')
  const acks = await Promise.all(sends)
  assert.equal(acks.length, 2)
  const all = (await stored(server.url, 'ops')).map((m) => m.text)
  assert.equal(all.length, 5, all.join(', '))
  assert.equal(all.filter((t) => t.startsWith('during')).length, 2, 'each stored once')
  await until(() => texts(ann, 'ops').length === 5, 'all shown')
  await sleep(300)
  assert.deepEqual(texts(ann, 'ops'), all)
  assertInOrderOnce(assert, ann, 'ops')
})
