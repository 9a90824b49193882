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
