'use strict'
// The package's API as a Node.js user relies on it: sync and async forms,
// batches, rotation, key files, typed errors and no crash on bad input.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const util = require('node:util')
const chatseal = require('..')
const { Keyring, Sealer, errorCodes } = chatseal

const isTypeError = (err) => err instanceof TypeError && err.code === 'ERR_INVALID_ARG_TYPE'

test('strings and buffers round-trip, sync and async', async () => {
  const sealer = new Sealer(Keyring.generate())
  const text = 'héllo 👋'
  const env = sealer.encrypt(text, 'lobby', 'ctx')
  assert.equal(sealer.decrypt(env, 'lobby', 'ctx'), text)
  assert.equal(await sealer.decryptAsync(await sealer.encryptAsync(text, 'lobby', 'ctx'), 'lobby', 'ctx'), text)

  const bytes = Buffer.from([0, 1, 2, 255])
  const bin = sealer.encryptBuffer(bytes, 'r')
  assert.ok(Buffer.isBuffer(bin))
  assert.equal(bin.length, 18 + bytes.length + 16)
  assert.deepEqual(sealer.decryptBuffer(bin, 'r'), bytes)
  assert.deepEqual(await sealer.decryptBufferAsync(await sealer.encryptBufferAsync(new Uint8Array(bytes), 'r'), 'r'), bytes)

  // The room defaults to "" (the service endpoints' room).
  assert.equal(sealer.decrypt(sealer.encrypt('x'), ''), 'x')
})

test('a large payload goes through the thread pool', async () => {
  const sealer = new Sealer(Keyring.generate())
  const big = Buffer.alloc(4 << 20, 7)
  const env = await sealer.encryptBufferAsync(big, 'r', 'c')
  assert.deepEqual(await sealer.decryptBufferAsync(env, 'r', 'c'), big)
})

test('bytes that are not UTF-8 refuse to open as text', () => {
  const sealer = new Sealer(Keyring.generate())
  const env = sealer.encrypt(Buffer.from([0xff, 0xfe]), 'r')
  assert.throws(() => sealer.decrypt(env, 'r'), { code: 'BAD_ENCODING' })
  assert.deepEqual(sealer.decryptBuffer(env, 'r'), Buffer.from([0xff, 0xfe]))
})

test('batches: seal all or nothing, open item by item', async () => {
  const sealer = new Sealer(Keyring.generate())
  const items = [
    { plaintext: 'a', room: 'r1', context: 'c1' },
    { plaintext: Buffer.from('b'), room: 'r2' },
  ]
  for (const sealed of [sealer.encryptBatch(items), await sealer.encryptBatchAsync(items)]) {
    const opened = sealer.decryptBatch([
      { envelope: sealed[0], room: 'r1', context: 'c1' },
      { envelope: sealed[1], room: 'r2' },
      { envelope: sealed[1], room: 'r1' },
      { envelope: 'not base64!', room: 'r1' },
    ])
    assert.deepEqual(opened[0], { ok: true, message: 'a' })
    assert.deepEqual(opened[1], { ok: true, message: 'b' })
    assert.equal(opened[2].error.code, 'BAD_TAG')
    assert.equal(opened[3].error.code, 'BAD_ENCODING')
    assert.deepEqual(await sealer.decryptBatchAsync([{ envelope: sealed[0], room: 'r1', context: 'c1' }]), [opened[0]])
  }
  assert.throws(() => sealer.encryptBatch([{ plaintext: 'a', room: 'ok' }, { plaintext: 'b', room: 'bad\u0001' }]), {
    code: 'INVALID_ROOM',
  })
  await assert.rejects(sealer.encryptBatchAsync([{ plaintext: 'b', room: 'x'.repeat(65) }]), { code: 'INVALID_ROOM' })
})

test('room key epochs: { room, epoch } in every form; a room name is epoch 0', async () => {
  const keyring = Keyring.generate()
  const sealer = new Sealer(keyring)
  const at = (epoch) => ({ room: 'r', epoch })
  const big = 'é'.repeat(1000) // over 1 KiB: the package's Buffer path for text
  for (const epoch of [0, 1, 7, 0xffffffff]) {
    const other = at(epoch === 0 ? 1 : epoch - 1)
    const sealed = [
      sealer.encrypt('sync', at(epoch), 'c'),
      sealer.encrypt(big, at(epoch), 'c'),
      sealer.encryptBuffer('buffer', at(epoch), 'c'),
      await sealer.encryptAsync('async', at(epoch), 'c'),
      await sealer.encryptBufferAsync('async buffer', at(epoch), 'c'),
      ...sealer.encryptBatch([{ plaintext: 'batch', room: 'r', epoch, context: 'c' }]),
      ...(await sealer.encryptBatchAsync([{ plaintext: 'batch async', room: 'r', epoch, context: 'c' }])),
    ]
    const texts = ['sync', big, 'buffer', 'async', 'async buffer', 'batch', 'batch async']
    for (const [i, envelope] of sealed.entries()) {
      const text = typeof envelope === 'string' ? envelope : envelope.toString('base64')
      assert.equal(sealer.decrypt(text, at(epoch), 'c'), texts[i])
      assert.equal((await sealer.decryptBufferAsync(envelope, at(epoch), 'c')).toString(), texts[i])
      assert.throws(() => sealer.decrypt(text, other, 'c'), { code: 'BAD_TAG' })
      assert.throws(() => sealer.decryptBuffer(envelope, other, 'c'), { code: 'BAD_TAG' })
      await assert.rejects(sealer.decryptAsync(text, other, 'c'), { code: 'BAD_TAG' })
      const out = Buffer.alloc(Buffer.from(text, 'base64').length)
      assert.equal(out.subarray(0, sealer.decryptInto(envelope, at(epoch), 'c', out)).toString(), texts[i])
      assert.deepEqual(
        sealer.decryptBatch([
          { envelope: text, room: 'r', epoch, context: 'c' },
          { envelope: text, room: 'r', epoch: other.epoch, context: 'c' },
        ]).map((o) => o.message ?? o.error.code),
        [texts[i], 'BAD_TAG'],
      )
      // A bare room name, and a batch item without `epoch`, are epoch 0.
      if (epoch === 0) {
        assert.equal(sealer.decrypt(text, 'r', 'c'), texts[i])
        assert.equal(sealer.decryptBatch([{ envelope: text, room: 'r', context: 'c' }])[0].message, texts[i])
      } else {
        assert.throws(() => sealer.decrypt(text, 'r', 'c'), { code: 'BAD_TAG' })
        assert.equal(sealer.decryptBatch([{ envelope: text, room: 'r', context: 'c' }])[0].error.code, 'BAD_TAG')
      }
    }
    // Room keys carry their epoch, and each epoch's key differs.
    const key = sealer.roomKey(at(epoch), 1)
    assert.deepEqual(key, { id: 1, epoch, key: keyring.roomKey(at(epoch)).key })
    assert.deepEqual(sealer.roomKeys(at(epoch)), [key])
    assert.notEqual(key.key, sealer.roomKey(other, 1).key)
    assert.equal(sealer.roomKey('r', 1).epoch, 0)
    assert.equal(keyring.roomKey('r').key, sealer.roomKey(at(0), 1).key)
  }
  // Rewrap keeps the epoch.
  const old = sealer.encrypt('kept', at(5), 'c')
  sealer.rotate()
  for (const moved of [
    sealer.rewrap(old, at(5), 'c'),
    sealer.rewrapBuffer(old, at(5), 'c'),
    await sealer.rewrapAsync(old, at(5), 'c'),
    await sealer.rewrapBufferAsync(old, at(5), 'c'),
    sealer.rewrapBatch([{ envelope: old, room: 'r', epoch: 5, context: 'c' }])[0].envelope,
  ]) {
    assert.equal(sealer.decryptBuffer(moved, at(5), 'c').toString(), 'kept')
    assert.throws(() => sealer.decryptBuffer(moved, 'r', 'c'), { code: 'BAD_TAG' })
  }
})

test('a bad epoch is a TypeError in every form, and nothing is sealed', async () => {
  const keyring = Keyring.generate()
  const sealer = new Sealer(keyring)
  const env = sealer.encrypt('x', 'r')
  const before = sealer.sealCounts()
  const bad = [-1, 1.5, 2 ** 32, '1', NaN, Infinity, null, undefined, 1n]
  const withRoom = (epoch) => [
    (room) => sealer.encrypt('x', room),
    (room) => sealer.encrypt('é'.repeat(1000), room),
    (room) => sealer.encryptBuffer('x', room),
    (room) => sealer.encryptInto('x', room, null, Buffer.alloc(64)),
    (room) => sealer.encryptAsync('x', room),
    (room) => sealer.encryptBufferAsync('x', room),
    (room) => sealer.decrypt(env, room),
    (room) => sealer.decryptBuffer(env, room),
    (room) => sealer.decryptInto(env, room, null, Buffer.alloc(64)),
    (room) => sealer.decryptAsync(env, room),
    (room) => sealer.decryptBufferAsync(env, room),
    (room) => sealer.rewrap(env, room),
    (room) => sealer.rewrapBuffer(env, room),
    (room) => sealer.rewrapAsync(env, room),
    (room) => sealer.rewrapBufferAsync(env, room),
    (room) => sealer.roomKey(room, 1),
    (room) => sealer.roomKeys(room),
    (room) => keyring.roomKey(room),
  ].map((call) => () => call({ room: 'r', epoch }))
  for (const epoch of bad) {
    for (const call of withRoom(epoch)) {
      assert.throws(call, (err) => isTypeError(err) && /epoch/.test(err.message), `${epoch}: ${call}`)
    }
  }
  // In a batch item `epoch` may be left out (0), but not be anything else.
  for (const epoch of bad.filter((e) => e !== null && e !== undefined)) {
    for (const call of [
      () => sealer.encryptBatch([{ plaintext: 'x', room: 'r', epoch }]),
      () => sealer.encryptBatchAsync([{ plaintext: 'x', room: 'r', epoch }]),
      () => sealer.decryptBatch([{ envelope: env, room: 'r', epoch }]),
      () => sealer.decryptBatchAsync([{ envelope: env, room: 'r', epoch }]),
      () => sealer.rewrapBatch([{ envelope: env, room: 'r', epoch }]),
      () => sealer.rewrapBatchAsync([{ envelope: env, room: 'r', epoch }]),
    ]) {
      assert.throws(call, (err) => isTypeError(err) && /epoch/.test(err.message), `${epoch}: ${call}`)
    }
  }
  // `{ room, epoch }` needs both; a room is a string or that object.
  for (const room of [{ room: 'r' }, { epoch: 1 }, { room: 5, epoch: 1 }, {}, [], 5, true]) {
    assert.throws(() => sealer.encrypt('x', room), isTypeError, JSON.stringify(room))
    assert.throws(() => sealer.roomKey(room, 1), isTypeError, JSON.stringify(room))
  }
  assert.deepEqual(sealer.sealCounts(), before)
  // The largest epoch and -0 are fine.
  assert.equal(sealer.decrypt(sealer.encrypt('max', { room: 'r', epoch: 4294967295 }), { room: 'r', epoch: 2 ** 32 - 1 }), 'max')
  assert.equal(sealer.decrypt(sealer.encrypt('zero', { room: 'r', epoch: -0 }), 'r'), 'zero')
})

test('rotation: new primary seals, old envelopes still open, retired ones do not', () => {
  const sealer = new Sealer(Keyring.generate())
  const old = sealer.encrypt('old', 'r')
  const id = sealer.rotate()
  assert.equal(id, 2)
  assert.equal(sealer.primaryKeyId, 2)
  const fresh = sealer.encrypt('new', 'r')
  assert.equal(Buffer.from(fresh, 'base64').readUInt32BE(2), 2)
  assert.equal(sealer.decrypt(old, 'r'), 'old')
  assert.deepEqual(sealer.roomKeys('r').map((k) => k.id), [1, 2])
  assert.deepEqual(
    sealer.sealCounts().map((c) => [c.keyId, c.count]),
    [
      [1, 1],
      [2, 1],
    ],
  )

  const keyring = sealer.keyring()
  keyring.setMinDecrypt(2)
  sealer.replaceKeyring(keyring)
  assert.throws(() => sealer.decrypt(old, 'r'), { code: 'RETIRED_KEY' })
  assert.equal(sealer.decrypt(fresh, 'r'), 'new')
  assert.throws(() => keyring.setMinDecrypt(3), { code: 'INVALID_KEYRING' })
})

test('keyring files: written 0600, refused when others can read them', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatseal-'))
  try {
    const file = path.join(dir, 'keyring.json')
    const made = Keyring.loadOrGenerate(file)
    assert.equal(fs.statSync(file).mode & 0o777, 0o600)
    const again = Keyring.loadOrGenerate(file)
    assert.equal(again.toJson(), made.toJson())
    assert.equal(Keyring.fromFile(file).primary, 1)
    fs.chmodSync(file, 0o644)
    assert.throws(() => Keyring.fromFile(file), { code: 'INSECURE_KEY_FILE' })
    assert.throws(() => Keyring.fromFile(path.join(dir, 'missing.json')), { code: 'IO' })
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('keyring from the environment: JSON or base64 of it', () => {
  const json = Keyring.generate().toJson()
  process.env.CHATSEAL_TEST_KEYRING = Buffer.from(json).toString('base64')
  try {
    assert.equal(Keyring.fromEnv('CHATSEAL_TEST_KEYRING').toJson(), json)
    process.env.CHATSEAL_TEST_KEYRING = 'nonsense'
    assert.throws(() => Keyring.fromEnv('CHATSEAL_TEST_KEYRING'), { code: 'INVALID_KEYRING' })
  } finally {
    delete process.env.CHATSEAL_TEST_KEYRING
  }
  assert.equal(Keyring.fromEnv('CHATSEAL_TEST_KEYRING'), null)
})

test('keys never show in inspect output or error messages', () => {
  const keyring = Keyring.generate()
  const secret = JSON.parse(keyring.toJson()).keys[0].key
  const sealer = new Sealer(keyring)
  assert.ok(!util.inspect(keyring, { showHidden: true, depth: 5 }).includes(secret))
  assert.ok(!util.inspect(sealer, { showHidden: true, depth: 5 }).includes(secret))
  try {
    Keyring.fromJson(`{"primary":1,"min_decrypt":1,"keys":[{"id":1,"key":"${secret.slice(0, 20)}"}]}`)
    assert.fail('a short key must be refused')
  } catch (err) {
    assert.equal(err.code, 'INVALID_KEYRING')
    assert.ok(!err.message.includes(secret.slice(0, 20)))
  }
})

test('every engine error code is listed, and engine errors are Errors with that code', () => {
  const codes = errorCodes()
  for (const c of ['MALFORMED', 'BAD_ENCODING', 'UNSUPPORTED_VERSION', 'UNSUPPORTED_ALGORITHM', 'UNKNOWN_KEY', 'RETIRED_KEY', 'BAD_TAG', 'INVALID_ROOM', 'INVALID_KEYRING', 'INSECURE_KEY_FILE', 'TOO_LARGE']) {
    assert.ok(codes.includes(c), c)
  }
  const sealer = new Sealer(Keyring.generate())
  assert.throws(() => sealer.decrypt('AQE=', 'r'), (e) => e instanceof Error && codes.includes(e.code) && e.code === 'MALFORMED')
})

test('wrong argument types throw TypeError and the process keeps going', async () => {
  const sealer = new Sealer(Keyring.generate())
  const calls = [
    () => new Sealer({}),
    () => new Sealer(),
    () => new Keyring(),
    () => Keyring.fromJson(42),
    () => sealer.encrypt(42, 'r'),
    () => sealer.encrypt('x', 7),
    () => sealer.encrypt('x', 'r', {}),
    () => sealer.decrypt(null, 'r'),
    () => sealer.decryptBuffer(123),
    () => sealer.encryptBatch('nope'),
    () => sealer.encryptBatch([{ room: 'r' }]),
    () => sealer.decryptBatch([{ envelope: 5 }]),
    () => sealer.roomKey('r', 'one'),
    () => sealer.encryptAsync(undefined),
    () => chatseal.chatContext(1, 2, 3),
  ]
  for (const call of calls) assert.throws(call, isTypeError, call.toString())
  assert.equal(sealer.decrypt(sealer.encrypt('still here', 'r'), 'r'), 'still here')
})

test('ESM import gives the same exports', async () => {
  const esm = await import('chatseal')
  assert.equal(esm.Sealer, Sealer)
  assert.equal(esm.Keyring, Keyring)
  assert.equal(typeof esm.default.chatContext, 'function')
})

test('large text forms take the same strict rules as small ones', () => {
  const sealer = new Sealer(Keyring.generate())
  for (const size of [1023, 1024, 5000, 200000]) {
    const text = 'ü'.repeat(size)
    const env = sealer.encrypt(text, 'r', 'c')
    assert.equal(Buffer.from(env, 'base64').length, 18 + Buffer.byteLength(text) + 16)
    assert.equal(sealer.decrypt(env, 'r', 'c'), text)
    assert.throws(() => sealer.decrypt(env, 'r', 'other'), { code: 'BAD_TAG' })
    // Not canonical standard base64: a newline, the URL-safe alphabet, no padding.
    const bad = [env.slice(0, 76) + '\n' + env.slice(76), env.replace(/\+/g, '-').replace(/\//g, '_'), env.replace(/=+$/, '')]
    for (const b of bad) {
      if (b !== env) assert.throws(() => sealer.decrypt(b, 'r', 'c'), { code: 'BAD_ENCODING' })
    }
    // Bytes that are not UTF-8 refuse to open as text at any size.
    const binary = sealer.encrypt(Buffer.alloc(size, 0xff), 'r', 'c')
    assert.throws(() => sealer.decrypt(binary, 'r', 'c'), { code: 'BAD_ENCODING' })
    assert.deepEqual(sealer.decryptBuffer(binary, 'r', 'c'), Buffer.alloc(size, 0xff))
  }
})

test('encryptInto / decryptInto write into the caller\'s buffer; failures leave no plaintext', () => {
  const sealer = new Sealer(Keyring.generate())
  const out = Buffer.alloc(64)
  const n = sealer.encryptInto('secret text', 'r', 'c', out)
  assert.equal(n, 18 + 11 + 16)
  const envelope = out.subarray(0, n)
  const plain = Buffer.alloc(n)
  const m = sealer.decryptInto(envelope, 'r', 'c', plain)
  assert.equal(plain.subarray(0, m).toString(), 'secret text')
  const text = Buffer.alloc(n)
  assert.equal(sealer.decryptInto(envelope.toString('base64'), 'r', 'c', text), 11)

  assert.throws(() => sealer.encryptInto('secret text', 'r', 'c', Buffer.alloc(10)), { code: 'BUFFER_TOO_SMALL' })
  assert.throws(() => sealer.decryptInto(envelope, 'r', 'c', Buffer.alloc(n - 1)), { code: 'BUFFER_TOO_SMALL' })
  const wrong = Buffer.alloc(n, 0xaa)
  assert.throws(() => sealer.decryptInto(envelope, 'r', 'other', wrong), { code: 'BAD_TAG' })
  assert.ok(!wrong.includes(Buffer.from('secret')), 'no plaintext after a failed open')
  assert.throws(() => sealer.encryptInto('x', 'r', 'c', 'not a buffer'), isTypeError)
})

test('the fast canonical-base64 check of long envelopes agrees with re-encoding on random mutations', () => {
  const sealer = new Sealer(Keyring.generate())
  const crypto = require('node:crypto')
  const env = sealer.encrypt('x'.repeat(1500), 'r', 'c') // long enough for the Buffer path
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \n\t*.\0é\u0100\ud800'
  const canonical = (s) => Buffer.from(s, 'base64').toString('base64') === s
  let tried = 0
  for (let i = 0; i < 3000; i++) {
    let s = env
    for (let k = crypto.randomInt(1, 4); k > 0; k--) {
      const p = crypto.randomInt(0, s.length + 1)
      const c = chars[crypto.randomInt(0, chars.length)]
      const op = crypto.randomInt(0, 3)
      s = op === 0 ? s.slice(0, p) + c + s.slice(p + 1) : op === 1 ? s.slice(0, p) + c + s.slice(p) : s.slice(0, p) + s.slice(p + 1)
    }
    if (s === env) continue
    tried++
    let code = null
    try {
      sealer.decrypt(s, 'r', 'c')
    } catch (e) {
      code = e.code
    }
    // Not canonical: BAD_ENCODING, as the engine says; canonical but changed:
    // never opens, and fails on what changed (tag, header), not the encoding.
    if (canonical(s)) assert.ok(code !== null && code !== 'BAD_ENCODING', `${code} for a canonical text`)
    else assert.equal(code, 'BAD_ENCODING', JSON.stringify(s.slice(-8)))
  }
  assert.ok(tried > 2500)
  // Non-zero bits after the data, '=' inside, and padding removed, at the end.
  const lastBits = env.replace(/([A-Za-z0-9+/])(=+)$/, (_, c, p) => 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'[('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.indexOf(c) | 1)] + p)
  for (const s of [lastBits, env.slice(0, 40) + '=' + env.slice(41)]) {
    if (s !== env) assert.throws(() => sealer.decrypt(s, 'r', 'c'), { code: 'BAD_ENCODING' })
  }
  assert.deepEqual(sealer.decryptBuffer(Buffer.from(env, 'base64').toString('base64'), 'r', 'c'), Buffer.from('x'.repeat(1500)))
})

test('decryptInPlace opens a binary envelope where it is; a failure leaves no plaintext', () => {
  const sealer = new Sealer(Keyring.generate())
  const env = sealer.encryptBuffer('in place', 'r', 'c')
  const work = Buffer.from(env)
  const n = sealer.decryptInPlace(work, 'r', 'c')
  assert.equal(work.subarray(0, n).toString(), 'in place')
  const tampered = Buffer.from(env)
  tampered[tampered.length - 1] ^= 1
  assert.throws(() => sealer.decryptInPlace(tampered, 'r', 'c'), { code: 'BAD_TAG' })
  assert.ok(!tampered.includes(Buffer.from('in place')))
})
