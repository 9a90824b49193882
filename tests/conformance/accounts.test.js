'use strict'
// Accounts, tokens, private rooms and the history API (Rust server).
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { start, JWT_SECRET, serviceToken, publishToken } = require('./lib/servers')
const { connect, request, until, openMessage } = require('./lib/client')

let server
const sockets = []

before(async () => {
  server = await start(process.env.CHATSEAL_TARGET || 'rust')
})

after(async () => {
  for (const s of sockets) s.close()
  await server.stop()
})

async function api(method, path, body, token) {
  const headers = { 'content-type': 'application/json' }
  if (token) headers.authorization = `Bearer ${token}`
  const res = await fetch(server.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null }
}

const users = new Map()
async function account(name) {
  if (users.has(name)) return users.get(name)
  const password = `pw-${name}-${crypto.randomBytes(4).toString('hex')}`
  assert.equal((await api('POST', '/api/register', { username: name, password })).status, 201)
  const login = await api('POST', '/api/login', { username: name, password })
  assert.equal(login.status, 200)
  users.set(name, login.body.token)
  return login.body.token
}

async function as(token) {
  const s = await connect(server.url, { token })
  sockets.push(s)
  return s
}

function jwt(header, claims, secret = JWT_SECRET) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url')
  const body = `${b64(header)}.${b64(claims)}`
  if (secret === null) return `${body}.`
  return `${body}.${crypto.createHmac('sha256', secret).update(body).digest('base64url')}`
}
const now = () => Math.floor(Date.now() / 1000)
const claims = (extra = {}) => ({ sub: 'ann', iss: 'chatseal', aud: 'chatseal-chat', iat: now(), exp: now() + 600, ...extra })

test('register and log in; bad input and wrong passwords are refused with codes', async () => {
  assert.equal((await api('POST', '/api/register', { username: 'reg1', password: 'long enough pw' })).status, 201)
  const dup = await api('POST', '/api/register', { username: 'reg1', password: 'another pw 123' })
  assert.equal(dup.status, 400)
  assert.equal(dup.body.error.code, 'BAD_REQUEST')
  for (const body of [{ username: 'bad name', password: 'long enough pw' }, { username: 'ok', password: 'short' }, { username: 'ok' }, {}]) {
    const r = await api('POST', '/api/register', body)
    assert.equal(r.status, 400, JSON.stringify(body))
    assert.equal(r.body.error.code, 'BAD_REQUEST')
  }
  const wrong = await api('POST', '/api/login', { username: 'reg1', password: 'not the password' })
  assert.equal(wrong.status, 401)
  assert.equal(wrong.body.error.code, 'UNAUTHORIZED')
  const nobody = await api('POST', '/api/login', { username: 'nobody', password: 'whatever123' })
  assert.equal(nobody.status, 401)
  const ok = await api('POST', '/api/login', { username: 'reg1', password: 'long enough pw' })
  assert.equal(ok.status, 200)
  assert.equal(ok.body.token.split('.').length, 3)
  assert.ok(ok.body.expiresAt > Date.now())
})

test('a token connects as its account; the account name is the sender', async () => {
  const token = await account('ann')
  const ann = await as(token)
  const ack = await request(ann, 'chat message', { message: 'signed in' })
  await until(() => ann.received.some((m) => m.id === ack.id))
  assert.equal(ann.received.find((m) => m.id === ack.id).sender, 'ann')
  // A guest may not take an account's name, in any case.
  await assert.rejects(connect(server.url, { name: 'ann' }), (e) => e.message.startsWith('FORBIDDEN'))
  await assert.rejects(connect(server.url, { name: 'ANN' }), (e) => e.message.startsWith('FORBIDDEN'))
})

test('guests and accounts never share a name: a guest is ~name, dedup is per sender', async () => {
  const name = `dave${process.pid}`
  // A guest takes the name while no account has it.
  const guestDave = await connect(server.url, { name })
  sockets.push(guestDave)
  const room = `names-${process.pid}`
  await request(guestDave, 'join', { room })
  const byGuest = await request(guestDave, 'chat message', { message: 'I am the guest', room, clientId: 'same-id' })
  assert.equal(byGuest.ok, true)
  // Then the account registers; the guest keeps posting, visibly a guest.
  const dave = await as(await account(name))
  await request(dave, 'join', { room })
  const again = await request(guestDave, 'chat message', { message: 'still the guest', room })
  // The account's message with the guest's clientId is its own message.
  const byAccount = await request(dave, 'chat message', { message: 'I am the account', room, clientId: 'same-id' })
  assert.equal(byAccount.ok, true)
  assert.notEqual(byAccount.id, byGuest.id)
  assert.equal(byAccount.seq, again.seq + 1)
  await until(() => [byGuest.id, again.id, byAccount.id].every((id) => dave.received.some((m) => m.id === id) || id === byGuest.id))
  const sender = (id) => dave.received.find((m) => m.id === id).sender
  assert.equal(sender(again.id), `~${name}`)
  assert.equal(sender(byAccount.id), name)
  // New guests may not take the account's name, in any case.
  for (const n of [name, name.toUpperCase(), `D${name.slice(1)}`]) {
    await assert.rejects(connect(server.url, { name: n }), (e) => e.message.startsWith('FORBIDDEN'), n)
  }
})

test('usernames are unique in any case: ann, Ann and ANN are one name', async () => {
  const name = `case${process.pid}`
  assert.equal((await api('POST', '/api/register', { username: name, password: 'long enough pw' })).status, 201)
  for (const other of [name.toUpperCase(), `C${name.slice(1)}`]) {
    const r = await api('POST', '/api/register', { username: other, password: 'long enough pw' })
    assert.equal(r.status, 400, other)
    assert.equal(r.body.error.code, 'BAD_REQUEST')
  }
})

test('expired, forged, alg:none and wrong-audience tokens are refused', async () => {
  await account('ann')
  const cases = [
    [jwt({ alg: 'HS256', typ: 'JWT' }, claims({ exp: now() - 10 })), 'UNAUTHORIZED: token expired'],
    [jwt({ alg: 'HS256', typ: 'JWT' }, claims(), 'some other secret, long enough....'), 'UNAUTHORIZED'],
    [jwt({ alg: 'none', typ: 'JWT' }, claims(), null), 'UNAUTHORIZED'],
    [jwt({ alg: 'HS256', typ: 'JWT' }, claims({ aud: 'elsewhere' })), 'UNAUTHORIZED'],
    [jwt({ alg: 'HS256', typ: 'JWT' }, claims({ iss: 'someone' })), 'UNAUTHORIZED'],
    [jwt({ alg: 'HS512', typ: 'JWT' }, claims()), 'UNAUTHORIZED'],
  ]
  for (const [token, prefix] of cases) {
    await assert.rejects(connect(server.url, { token }), (e) => e.message.startsWith(prefix), prefix)
  }
  // The same claims, properly signed, are accepted: the refusals above are about the token.
  const good = await as(jwt({ alg: 'HS256', typ: 'JWT' }, claims()))
  assert.equal((await request(good, 'join', { room: 'tokens' })).ok, true)
})

test('a token is only as good as its sub: outside the name rules or no such account is refused', async () => {
  await account('ann')
  const sign = (extra) => jwt({ alg: 'HS256', typ: 'JWT' }, claims(extra))
  for (const sub of ['', 'ann\u0000', 'a b', '~ann', 'x'.repeat(10000), `nobody-${process.pid}`]) {
    await assert.rejects(
      connect(server.url, { token: sign({ sub }) }),
      (e) => e.message.startsWith('UNAUTHORIZED'),
      `sub ${JSON.stringify(sub.slice(0, 20))}`,
    )
    const r = await api('POST', '/api/rooms', { name: `subcheck-${process.pid}` }, sign({ sub }))
    assert.equal(r.status, 401, `HTTP with sub ${JSON.stringify(sub.slice(0, 20))}`)
  }
})

test('iat is optional: a token with sub, iss, aud and exp connects', async () => {
  await account('ann')
  const { iat, ...rest } = claims()
  assert.ok(iat)
  const s = await as(jwt({ alg: 'HS256', typ: 'JWT' }, rest))
  assert.equal((await request(s, 'join', { room: 'no-iat' })).ok, true)
})

// A token for `sub` that expires `secs` from now (JWT exp is in seconds).
const shortToken = (sub, secs) => {
  const exp = now() + secs
  return { token: jwt({ alg: 'HS256', typ: 'JWT' }, claims({ sub, exp })), exp }
}
const expired = (socket) =>
  new Promise((resolve, reject) => {
    const seen = {}
    const timer = setTimeout(() => reject(new Error('the session outlived its token by 10 s')), 12000)
    socket.once('session expired', (why) => (seen.event = why))
    socket.once('disconnect', (reason) => {
      clearTimeout(timer)
      resolve({ ...seen, reason })
    })
  })

test('a session ends at its token\'s exp: "session expired", then the socket is closed', async () => {
  await account('ann')
  const { token, exp } = shortToken('ann', 2)
  const s = await as(token)
  const ended = expired(s)
  assert.equal((await request(s, 'join', { room: 'expiring' })).ok, true)
  const got = await ended
  assert.deepEqual(got.event, { code: 'UNAUTHORIZED', message: 'token expired' })
  assert.equal(got.reason, 'io server disconnect')
  assert.ok(Date.now() >= exp * 1000, 'not before exp')
  // And that token connects no more.
  await assert.rejects(connect(server.url, { token }), (e) => e.message.startsWith('UNAUTHORIZED'))
})

test('refresh with a newer token of the same account keeps the session; others are refused', async () => {
  await account('ann')
  await account('bob')
  const { token } = shortToken('ann', 2)
  const s = await as(token)
  let ended = false
  s.once('session expired', () => (ended = true))
  const fresh = shortToken('ann', 600)
  // Refused: bad payloads, another account's token, an expired or forged token.
  assert.equal((await request(s, 'refresh', {})).error.code, 'BAD_REQUEST')
  assert.equal((await request(s, 'refresh', [fresh.token])).error.code, 'BAD_REQUEST')
  for (const bad of [shortToken('bob', 600).token, shortToken('ann', -10).token, jwt({ alg: 'HS256', typ: 'JWT' }, claims(), 'another secret, long enough.....')]) {
    const ack = await request(s, 'refresh', { token: bad })
    assert.equal(ack.ok, false)
    assert.equal(ack.error.code, 'UNAUTHORIZED')
  }
  const ack = await request(s, 'refresh', { token: fresh.token })
  assert.deepEqual(ack, { ok: true, expiresAt: fresh.exp * 1000 })
  await new Promise((r) => setTimeout(r, 3000)) // past the first token's exp
  assert.equal(ended, false)
  assert.equal(s.connected, true)
  assert.equal((await request(s, 'chat message', { message: 'still in' })).ok, true)
})

test('a flood of refresh is cut at 5, then 1/s: each one costs a token check and a store read', async () => {
  const tok = await account('refresher')
  const s = await as(tok)
  const fresh = shortToken('refresher', 600).token
  const acks = await Promise.all(Array.from({ length: 12 }, () => request(s, 'refresh', { token: fresh })))
  const limited = acks.filter((a) => !a.ok)
  assert.ok(acks.filter((a) => a.ok).length >= 5, 'the burst passes')
  assert.ok(limited.length >= 5, `only ${limited.length} of 12 refused`)
  for (const a of limited) assert.equal(a.error.code, 'RATE_LIMITED')
  assert.equal((await request(s, 'chat message', { message: 'still serving' })).ok, true)
})

test('private rooms: the owner invites; others, and guests, are refused', async () => {
  const [ownerTok, bobTok, carolTok] = [await account('owner'), await account('bob'), await account('carol')]
  const room = `private-${process.pid}`
  assert.equal((await api('POST', '/api/rooms', { name: room, private: true })).status, 401)
  assert.equal((await api('POST', '/api/rooms', { name: room, private: true }, ownerTok)).status, 201)
  const taken = await api('POST', '/api/rooms', { name: room }, bobTok)
  assert.equal(taken.status, 409)
  assert.equal(taken.body.error.code, 'CONFLICT')
  const byCarol = await api('POST', `/api/rooms/${room}/members`, { username: 'carol' }, carolTok)
  assert.equal(byCarol.status, 403)
  assert.equal(byCarol.body.error.code, 'FORBIDDEN')
  assert.equal((await api('POST', `/api/rooms/${room}/members`, { username: 'nobody-here' }, ownerTok)).status, 404)
  assert.equal((await api('POST', `/api/rooms/${room}/members`, { username: 'bob' }, ownerTok)).status, 200)

  const owner = await as(ownerTok)
  const bob = await as(bobTok)
  const carol = await as(carolTok)
  const guest = await connect(server.url, { name: 'peeker' })
  sockets.push(guest)
  const { keys } = await request(owner, 'join', { room })
  assert.equal((await request(bob, 'join', { room })).ok, true)
  const carolJoin = await request(carol, 'join', { room })
  assert.equal(carolJoin.error.code, 'FORBIDDEN')
  assert.equal(carolJoin.keys, undefined)
  assert.equal((await request(guest, 'join', { room })).error.code, 'FORBIDDEN')
  assert.equal((await request(carol, 'chat message', { message: 'let me in', room })).error.code, 'FORBIDDEN')

  const ack = await request(owner, 'chat message', { message: 'members only', room })
  await until(() => bob.received.some((m) => m.id === ack.id))
  assert.equal(await openMessage(keys, bob.received.find((m) => m.id === ack.id)), 'members only')
  assert.equal(carol.received.filter((m) => m.room === room).length, 0)
})

test('a name with history cannot become private; a silent one can, and its non-members are put out', async () => {
  const ownerTok = await account('late-owner')
  const owner = await as(ownerTok)
  const eve = await as(await account('eve'))
  const guest = await connect(server.url, { name: 'lurker' })
  sockets.push(guest)
  // Joined only (no message yet), and joined and posted to.
  const joined = `joined-${process.pid}`
  const posted = `posted-${process.pid}`
  for (const room of [joined, posted]) {
    assert.equal((await request(eve, 'join', { room })).ok, true)
    assert.equal((await request(guest, 'join', { room })).ok, true)
  }
  assert.equal((await request(eve, 'chat message', { message: 'first', room: posted })).ok, true)
  // A name with stored messages stays what it is: public, and those inside
  // keep posting (its history was sealed under a key they hold).
  const r = await api('POST', '/api/rooms', { name: posted, private: true }, ownerTok)
  assert.equal(r.status, 409)
  assert.equal(r.body.error.code, 'CONFLICT')
  assert.match(r.body.error.message, /cannot become private/)
  const ack = await request(eve, 'chat message', { message: 'still public', room: posted })
  assert.equal(ack.ok, true)
  await until(() => guest.received.some((m) => m.id === ack.id), 5000, 'delivery to the earlier joiner')

  // A joined but silent name becomes private: no earlier joiner is left
  // inside, to receive or to post.
  assert.equal((await api('POST', '/api/rooms', { name: joined, private: true }, ownerTok)).status, 201)
  assert.equal((await request(owner, 'join', { room: joined })).ok, true)
  for (const s of [eve, guest]) {
    assert.equal((await request(s, 'chat message', { message: 'still in?', room: joined })).error.code, 'FORBIDDEN')
    assert.equal((await request(s, 'join', { room: joined })).error.code, 'FORBIDDEN')
  }
  const secret = await request(owner, 'chat message', { message: 'members only', room: joined })
  assert.equal(secret.ok, true)
  // A later message to a public room both are in shows delivery has
  // caught up past the secret one; neither got it.
  const marker = await request(eve, 'chat message', { message: 'marker', room: posted })
  await until(() => guest.received.some((m) => m.id === marker.id), 5000, 'marker')
  await until(() => eve.received.some((m) => m.id === marker.id), 5000, 'marker')
  for (const s of [eve, guest]) assert.equal(s.received.filter((m) => m.room === joined).length, 0)

  // A fresh name becomes private, and then nobody else is in it.
  const fresh = `fresh-private-${process.pid}`
  assert.equal((await api('POST', '/api/rooms', { name: fresh, private: true }, ownerTok)).status, 201)
  assert.equal((await request(eve, 'join', { room: fresh })).error.code, 'FORBIDDEN')
  assert.equal((await request(guest, 'join', { room: fresh })).error.code, 'FORBIDDEN')
  assert.equal((await request(eve, 'chat message', { message: 'in?', room: fresh })).error.code, 'FORBIDDEN')
})

test('lobby is reserved: nobody can create it, private or not', async () => {
  const tok = await account('squatter')
  for (const body of [{ name: 'lobby', private: true }, { name: 'lobby' }]) {
    const r = await api('POST', '/api/rooms', body, tok)
    assert.equal(r.status, 403, JSON.stringify(body))
    assert.equal(r.body.error.code, 'FORBIDDEN')
  }
  // Everyone still chats there.
  const a = await as(tok)
  const b = await connect(server.url, { name: 'lobbyist' })
  sockets.push(b)
  const ack = await request(b, 'chat message', { message: 'open to all' })
  assert.equal(ack.ok, true)
  await until(() => a.received.some((m) => m.id === ack.id), 5000, 'lobby delivery')
})

test('history: members read envelopes by seq; others are refused', async () => {
  const ownerTok = await account('historian')
  const outsiderTok = await account('outsider')
  const room = `history-${process.pid}`
  assert.equal((await api('POST', '/api/rooms', { name: room, private: true }, ownerTok)).status, 201)
  const owner = await as(ownerTok)
  const { keys } = await request(owner, 'join', { room })
  for (let i = 1; i <= 5; i++) await request(owner, 'chat message', { message: `h${i}`, room })

  const all = await api('GET', `/api/rooms/${room}/messages`, undefined, ownerTok)
  assert.equal(all.status, 200)
  assert.deepEqual(all.body.map((m) => m.seq), [1, 2, 3, 4, 5])
  assert.equal(await openMessage(keys, all.body[4]), 'h5')
  const page = await api('GET', `/api/rooms/${room}/messages?after=1&limit=2`, undefined, ownerTok)
  assert.deepEqual(page.body.map((m) => m.seq), [2, 3])
  const older = await api('GET', `/api/rooms/${room}/messages?before=3`, undefined, ownerTok)
  assert.deepEqual(older.body.map((m) => m.seq), [1, 2])
  const latest = await api('GET', `/api/rooms/${room}/messages?limit=2`, undefined, ownerTok)
  assert.deepEqual(latest.body.map((m) => m.seq), [4, 5])

  assert.equal((await api('GET', `/api/rooms/${room}/messages`, undefined, outsiderTok)).status, 403)
  assert.equal((await api('GET', `/api/rooms/${room}/messages`)).status, 401)
  assert.equal((await api('GET', `/api/rooms/${room}/messages?limit=0`, undefined, ownerTok)).status, 400)
  assert.equal((await api('GET', `/api/rooms/${room}/messages?limit=abc`, undefined, ownerTok)).status, 400)
})

test('room directory: public rooms for anyone, private ones for their members, paged by name', async () => {
  const ownerTok = await account('dirowner')
  const bobTok = await account('dirbob')
  const eveTok = await account('direve')
  const tag = `dir${process.pid}`
  const secret = `${tag}-c-secret`
  for (const [name, priv] of [[`${tag}-a-open`, false], [`${tag}-b-open`, false], [secret, true]]) {
    assert.equal((await api('POST', '/api/rooms', { name, private: priv }, ownerTok)).status, 201)
  }
  assert.equal((await api('POST', `/api/rooms/${secret}/members`, { username: 'dirbob' }, ownerTok)).status, 200)
  const owner = await as(ownerTok)
  await request(owner, 'join', { room: `${tag}-a-open` })
  await request(owner, 'chat message', { message: 'hi', room: `${tag}-a-open` })

  // Everything listed, walked page by page with `next`.
  async function walk(token, limit) {
    const names = []
    let after = ''
    for (let i = 0; i < 1000; i++) {
      const r = await api('GET', `/api/rooms?limit=${limit}&after=${encodeURIComponent(after)}`, undefined, token)
      assert.equal(r.status, 200)
      assert.ok(r.body.rooms.length <= limit)
      names.push(...r.body.rooms.filter((x) => x.name.startsWith(tag)))
      if (r.body.next === null) return names
      after = r.body.next
    }
    throw new Error('no last page')
  }
  const anonymous = await walk(undefined, 1)
  assert.deepEqual(anonymous.map((r) => r.name), [`${tag}-a-open`, `${tag}-b-open`])
  assert.deepEqual(anonymous[0], { name: `${tag}-a-open`, owner: 'dirowner', private: false, lastSeq: 1 })
  assert.deepEqual((await walk(eveTok, 2)).map((r) => r.name), [`${tag}-a-open`, `${tag}-b-open`], 'not a member: no private room')
  const bobs = await walk(bobTok, 50)
  assert.deepEqual(bobs.map((r) => r.name), [`${tag}-a-open`, `${tag}-b-open`, secret])
  assert.equal(bobs[2].private, true)

  // Members: for those who may read the room.
  const members = await api('GET', `/api/rooms/${secret}/members`, undefined, bobTok)
  assert.equal(members.status, 200)
  assert.deepEqual(members.body, { room: secret, owner: 'dirowner', private: true, members: ['dirbob', 'dirowner'], next: null })
  const first = await api('GET', `/api/rooms/${secret}/members?limit=1`, undefined, ownerTok)
  assert.deepEqual([first.body.members, first.body.next], [['dirbob'], 'dirbob'])
  const second = await api('GET', `/api/rooms/${secret}/members?limit=1&after=dirbob`, undefined, ownerTok)
  assert.deepEqual(second.body.members, ['dirowner'])
  assert.equal((await api('GET', `/api/rooms/${secret}/members`, undefined, eveTok)).status, 403)
  assert.equal((await api('GET', `/api/rooms/${secret}/members`)).status, 401)
  assert.equal((await api('GET', `/api/rooms/${tag}-nowhere/members`, undefined, eveTok)).status, 404)

  // Bad input is refused with a code; a bad token is never read as none.
  for (const q of ['limit=0', 'limit=201', 'limit=x', `after=${'a'.repeat(300)}`, 'other=1']) {
    const r = await api('GET', `/api/rooms?${q}`)
    assert.equal(r.status, 400, q)
    assert.equal(r.body.error.code, 'BAD_REQUEST')
  }
  assert.equal((await api('GET', '/api/rooms', undefined, 'not-a-token')).status, 401)
})

test('publish API: a service posts with its token; stored once, acked, broadcast, marked as a service', async () => {
  const room = `publish-${process.pid}`
  const reader = await connect(server.url, { name: 'pubreader' })
  sockets.push(reader)
  const { keys } = await request(reader, 'join', { room })
  const post = (body, token = publishToken(server), where = room) => api('POST', `/api/rooms/${where}/messages`, body, token)

  const first = await post({ message: 'deploy finished', sender: 'ci', clientId: 'd-1' })
  assert.equal(first.status, 201, JSON.stringify(first.body))
  assert.equal(first.body.ok, true)
  assert.equal(first.body.seq, 1)
  assert.equal(first.body.sender, '#ci')
  await until(() => reader.received.some((m) => m.id === first.body.id), 5000, 'broadcast to the room')
  const got = reader.received.find((m) => m.id === first.body.id)
  assert.equal(got.sender, '#ci')
  assert.equal(await openMessage(keys, got), 'deploy finished')
  // A resend with the same clientId: the first message, not a second one.
  const again = await post({ message: 'deploy finished', sender: 'ci', clientId: 'd-1' })
  assert.equal(again.status, 200)
  assert.equal(again.body.id, first.body.id)
  const joined = await request(reader, 'join', { room, since: 0 })
  assert.equal(joined.latestSeq, 1)

  // Only with the publish token: not the /decrypt one, not a user's.
  const userTok = await account('pubuser')
  for (const token of [null, 'wrong', serviceToken(server), userTok]) {
    const r = await post({ message: 'x', sender: 'ci' }, token)
    assert.equal(r.status, 401, String(token))
    assert.equal(r.body.error.code, 'UNAUTHORIZED')
  }
  // Bad input: clear codes, nothing stored.
  const cases = [
    [{ message: 'x', sender: 'bad name' }, 400],
    [{ message: 'x', sender: '~guest' }, 400],
    [{ message: 'x' }, 400],
    [{ sender: 'ci' }, 400],
    [{ message: 'x', sender: 'ci', room: 'elsewhere' }, 400],
    [{ message: 'x', sender: 'ci', clientId: '' }, 400],
    [['x'], 400],
    [{ message: 'x'.repeat(65 * 1024), sender: 'ci' }, 413],
  ]
  for (const [body, status] of cases) assert.equal((await post(body)).status, status, JSON.stringify(body).slice(0, 80))
  assert.equal((await post({ message: 'x', sender: 'ci' }, null, '%01bad')).status, 401, 'the token is checked first')
  assert.equal((await post({ message: 'x', sender: 'ci' }, publishToken(server), '%01bad')).status, 400)
  assert.equal((await request(reader, 'join', { room, since: 0 })).latestSeq, 1, 'nothing more stored')

  // A private room: the service posts; members read it, others cannot.
  const ownerTok = await account('pubowner')
  const secret = `publish-private-${process.pid}`
  assert.equal((await api('POST', '/api/rooms', { name: secret, private: true }, ownerTok)).status, 201)
  const inPrivate = await post({ message: 'for members', sender: 'bot' }, publishToken(server), secret)
  assert.equal(inPrivate.status, 201)
  const history = await api('GET', `/api/rooms/${secret}/messages`, undefined, ownerTok)
  assert.deepEqual(history.body.map((m) => [m.seq, m.sender]), [[1, '#bot']])
  assert.equal((await api('GET', `/api/rooms/${secret}/messages`, undefined, userTok)).status, 403)
})

test('owners remove members and delete rooms; the removed stop receiving at once', async () => {
  const ownerTok = await account('remowner')
  const memTok = await account('remmember')
  const otherTok = await account('remother')
  const room = `removal-${process.pid}`
  assert.equal((await api('POST', '/api/rooms', { name: room, private: true }, ownerTok)).status, 201)
  for (const u of ['remmember', 'remother']) assert.equal((await api('POST', `/api/rooms/${room}/members`, { username: u }, ownerTok)).status, 200)
  const owner = await as(ownerTok)
  const member = await as(memTok)
  const closed = []
  member.on('room closed', (e) => closed.push(e))
  await request(owner, 'join', { room })
  assert.equal((await request(member, 'join', { room })).ok, true)
  const before = await request(owner, 'chat message', { message: 'before', room })
  await until(() => member.received.some((m) => m.id === before.id), 5000, 'member receives')

  // Only the owner removes; not the owner itself; not a non-member.
  const remove = (u, tok) => api('DELETE', `/api/rooms/${room}/members/${u}`, undefined, tok)
  assert.equal((await remove('remmember', otherTok)).status, 403)
  assert.equal((await remove('remmember')).status, 401)
  assert.equal((await remove('remowner', ownerTok)).status, 400)
  assert.equal((await remove('nobody', ownerTok)).status, 404)
  assert.equal((await remove('remmember', ownerTok)).status, 200)
  await until(() => closed.length === 1, 5000, 'the removed member is told')
  assert.deepEqual(closed[0], { room, code: 'FORBIDDEN', message: 'you were removed from this room' })

  const after = await request(owner, 'chat message', { message: 'after', room })
  assert.equal(after.ok, true)
  await new Promise((r) => setTimeout(r, 300))
  assert.ok(!member.received.some((m) => m.id === after.id), 'a removed member receives nothing more')
  assert.equal((await request(member, 'chat message', { message: 'still here?', room })).error.code, 'FORBIDDEN')
  assert.equal((await request(member, 'join', { room })).error.code, 'FORBIDDEN')
  assert.equal((await api('GET', `/api/rooms/${room}/messages`, undefined, memTok)).status, 403)
  const members = await api('GET', `/api/rooms/${room}/members`, undefined, ownerTok)
  assert.deepEqual(members.body.members, ['remother', 'remowner'])

  // Delete: the owner only; the history goes; nobody may join it again.
  assert.equal((await api('DELETE', `/api/rooms/${room}`, undefined, otherTok)).status, 403)
  const deleted = await api('DELETE', `/api/rooms/${room}`, undefined, ownerTok)
  assert.deepEqual(deleted.body, { ok: true, deletedMessages: 2 })
  assert.equal((await request(owner, 'chat message', { message: 'gone?', room })).error.code, 'FORBIDDEN', 'the owner is out too')
  assert.equal((await request(owner, 'join', { room })).error.code, 'FORBIDDEN')
  assert.equal((await api('GET', `/api/rooms/${room}/messages`, undefined, ownerTok)).status, 403)
  assert.equal((await api('POST', '/api/rooms', { name: room, private: true }, otherTok)).status, 409, 'the name stays used')
  assert.equal((await api('DELETE', `/api/rooms/${room}`, undefined, ownerTok)).status, 403, 'it has no owner now')
  assert.equal((await api('DELETE', `/api/rooms/nowhere-${process.pid}`, undefined, ownerTok)).status, 404)

  // A public room: no members to remove; deleting it empties it, readers stay.
  const open = `removal-open-${process.pid}`
  assert.equal((await api('POST', '/api/rooms', { name: open }, ownerTok)).status, 201)
  const reader = await as(otherTok)
  await request(reader, 'join', { room: open })
  await request(owner, 'join', { room: open })
  assert.equal((await request(owner, 'chat message', { message: 'one', room: open })).seq, 1)
  assert.equal((await api('DELETE', `/api/rooms/${open}/members/remother`, undefined, ownerTok)).status, 400)
  assert.deepEqual((await api('DELETE', `/api/rooms/${open}`, undefined, ownerTok)).body, { ok: true, deletedMessages: 1 })
  const two = await request(owner, 'chat message', { message: 'two', room: open })
  assert.equal(two.seq, 2, 'numbered on: a seq never means two messages')
  await until(() => reader.received.some((m) => m.id === two.id), 5000, 'the reader stays in a deleted public room')
  assert.deepEqual((await request(reader, 'join', { room: open, since: 0 })).missed.map((m) => m.seq), [2])
})

test('/metrics exports Prometheus counters', async () => {
  const res = await fetch(server.url + '/metrics')
  assert.equal(res.status, 200)
  const text = await res.text()
  for (const name of ['chatseal_connections', 'chatseal_messages_total', 'chatseal_seals_total', 'chatseal_store_seconds']) {
    assert.ok(text.includes(name), name)
  }
})
