'use strict'
// A keyring reload (SIGHUP) whose file never answers (here a FIFO nobody
// writes; a hung network mount behaves the same) must fail that reload
// only: the server keeps serving with its keys meanwhile, says why in the
// log, and a later reload from a good file works.
//
// The server runs with one runtime worker (TOKIO_WORKER_THREADS=1), so a
// read on the runtime would stop everything, visibly.
const { test, after } = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { start } = require('../conformance/lib/servers')
const { connect, request, until } = require('../conformance/lib/client')

let server
let socket

after(async () => {
  socket?.close()
  await server?.stop()
})

test('a keyring file that hangs fails the reload, not the server', async () => {
  // A plain keyring file of the operator's (the dev default is wrapped:
  // this test rewrites the file by hand, as an operator would a plain one).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatseal-fifo-keys-'))
  const file = path.join(dir, 'keyring.json')
  const keyring = { primary: 1, keys: [{ id: 1, key: crypto.randomBytes(32).toString('base64') }] }
  fs.writeFileSync(file, JSON.stringify(keyring), { mode: 0o600 })
  server = await start('rust', { env: { TOKIO_WORKER_THREADS: '1', CHATSEAL_KEYRING_FILE: file } })
  socket = await connect(server.url, { name: 'ann' })

  fs.unlinkSync(file)
  execFileSync('mkfifo', ['-m', '600', file])
  server.child.kill('SIGHUP')
  await new Promise((r) => setTimeout(r, 300))

  // Everything else goes on while the read hangs.
  const health = await fetch(server.url + '/healthz', { signal: AbortSignal.timeout(2000) })
  assert.equal(health.status, 200)
  const ack = await request(socket, 'chat message', { message: 'still here' })
  assert.equal(ack.ok, true)
  await until(() => server.log.some((l) => l.includes('keyring reload failed')), 10000, 'the reload to give up')
  assert.ok(server.log.some((l) => l.includes('did not answer')), server.log.join('\n'))

  // Release the stuck read (its result is dropped), then rotate properly.
  const writer = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK)
  fs.closeSync(writer)
  fs.unlinkSync(file)
  const rotated = {
    primary: 2,
    keys: [...keyring.keys, { id: 2, key: crypto.randomBytes(32).toString('base64') }],
  }
  fs.writeFileSync(file, JSON.stringify(rotated), { mode: 0o600 })
  // The released read returns on a blocking thread of its own; until it has,
  // a reload is refused at once ("has not returned yet"), as an operator
  // would see. So signal again, a bounded number of times, until it takes.
  const rotatedNow = () => server.log.some((l) => /keyring reloaded/.test(l) && /primary=2/.test(l))
  for (let i = 0; i < 20 && !rotatedNow(); i++) {
    server.child.kill('SIGHUP')
    await new Promise((r) => setTimeout(r, 500))
  }
  await until(rotatedNow, 10000, 'the rotation')
  const after = await request(socket, 'join', { room: 'rotated' })
  assert.deepEqual(after.keys.map((k) => k.id).sort(), [1, 2])
  fs.rmSync(dir, { recursive: true, force: true })
})
