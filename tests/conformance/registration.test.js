'use strict'
// Registration policy (--registration open|invite|closed) and the accounts
// an operator manages with `chatseal-server users …` while the server runs
// (Rust server).
const { test, after } = require('node:test')
const assert = require('node:assert/strict')
const { start, users } = require('./lib/servers')
const { connect } = require('./lib/client')

const running = []
after(async () => {
  for (const s of running) await s.stop()
})

async function server(mode) {
  const s = await start('rust', { extraArgs: ['--registration', mode] })
  running.push(s)
  return s
}

async function api(s, method, path, body, token) {
  const headers = { 'content-type': 'application/json' }
  if (token) headers.authorization = `Bearer ${token}`
  const res = await fetch(s.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null }
}

const login = (s, username, password) => api(s, 'POST', '/api/login', { username, password })

test('closed: no sign-up over HTTP; `users add` makes accounts that log in', async () => {
  const s = await server('closed')
  const refused = await api(s, 'POST', '/api/register', { username: 'walkin', password: 'long enough pw' })
  assert.equal(refused.status, 403)
  assert.equal(refused.body.error.code, 'FORBIDDEN')
  const added = await users(['add', 'staff'], { dataDir: s.dataDir, input: 'a good password\n' })
  assert.equal(added.code, 0, added.stderr)
  assert.doesNotMatch(added.stdout + added.stderr, /a good password/, 'the password is never printed')
  assert.equal((await login(s, 'staff', 'a good password')).status, 200)
  // Taken names, bad names and short passwords are refused with a message.
  for (const [args, input, what] of [
    [['add', 'STAFF'], 'another password\n', /exists already/],
    [['add', 'bad name'], 'another password\n', /./],
    [['add', 'short'], 'tiny\n', /./],
  ]) {
    const r = await users(args, { dataDir: s.dataDir, input })
    assert.notEqual(r.code, 0, args.join(' '))
    assert.match(r.stderr, what)
  }
  // Names of the identity provider's users are not for local accounts.
  const sso = await users(['add', 'SSO.ann'], { dataDir: s.dataDir, input: 'another password\n', env: { CHATSEAL_OIDC_NAME_PREFIX: 'sso.' } })
  assert.notEqual(sso.code, 0)
  assert.match(sso.stderr, /identity provider/)
  const generated = await users(['add', 'robot', '--generate'], { dataDir: s.dataDir })
  assert.equal(generated.code, 0, generated.stderr)
  const password = /password: (\S+)/.exec(generated.stdout)[1]
  assert.equal((await login(s, 'robot', password)).status, 200)
})

test('invite: a code from `users invite` signs up as many accounts as it allows, once each', async () => {
  const s = await server('invite')
  const none = await api(s, 'POST', '/api/register', { username: 'nocode', password: 'long enough pw' })
  assert.equal(none.status, 403)
  const made = await users(['invite', '--uses', '2', '--expires', '1h'], { dataDir: s.dataDir })
  assert.equal(made.code, 0, made.stderr)
  const code = made.stdout.trim()
  assert.match(code, /^[A-Za-z0-9_-]{22}$/)
  const reg = (username, invite) => api(s, 'POST', '/api/register', { username, password: 'long enough pw', invite })
  assert.equal((await reg('wrongcode', 'x'.repeat(22))).status, 403)
  assert.equal((await reg('first', code)).status, 201)
  assert.equal((await reg('first', code)).status, 400, 'a taken name does not use the invitation up')
  assert.equal((await reg('second', code)).status, 201)
  const third = await reg('third', code)
  assert.equal(third.status, 403, 'used up')
  assert.match(third.body.error.message, /used up|expired|unknown/)
  assert.equal((await login(s, 'second', 'long enough pw')).status, 200)
})

test('reset-password ends earlier sessions; disable refuses logins and tokens; enable lets it back in', async () => {
  const s = await server('open')
  assert.equal((await api(s, 'POST', '/api/register', { username: 'ruth', password: 'first password' })).status, 201)
  const old = (await login(s, 'ruth', 'first password')).body.token
  assert.equal((await api(s, 'GET', '/api/rooms', undefined, old)).status, 200)
  // Tokens carry whole seconds: the reset must come in a later second than the token.
  await new Promise((r) => setTimeout(r, 1100))
  const reset = await users(['reset-password', 'ruth'], { dataDir: s.dataDir, input: 'second password\n' })
  assert.equal(reset.code, 0, reset.stderr)
  assert.equal((await api(s, 'GET', '/api/rooms', undefined, old)).status, 401, 'the old session is over')
  await assert.rejects(connect(s.url, { token: old }), /UNAUTHORIZED/)
  assert.equal((await login(s, 'ruth', 'first password')).status, 401)
  await new Promise((r) => setTimeout(r, 1100))
  const fresh = (await login(s, 'ruth', 'second password')).body.token
  assert.equal((await api(s, 'GET', '/api/rooms', undefined, fresh)).status, 200)

  assert.equal((await users(['disable', 'ruth'], { dataDir: s.dataDir })).code, 0)
  assert.equal((await login(s, 'ruth', 'second password')).status, 401)
  assert.equal((await api(s, 'GET', '/api/rooms', undefined, fresh)).status, 401)
  assert.equal((await users(['enable', 'ruth'], { dataDir: s.dataDir })).code, 0)
  assert.equal((await login(s, 'ruth', 'second password')).status, 200)
  assert.equal((await api(s, 'GET', '/api/rooms', undefined, fresh)).status, 401, 'tokens from before stay refused')
  const nobody = await users(['disable', 'nobody'], { dataDir: s.dataDir })
  assert.notEqual(nobody.code, 0)
  assert.match(nobody.stderr, /no account named nobody/)
})
