'use strict'
// Per-message sealing and opening from Node.js: the chatseal addon against
// node:crypto doing the same work — a v1 envelope (header, fresh random
// nonce, AES-256-GCM with header ‖ chat context as associated data, base64
// text form) under an already-derived room key.
//
//   node bench/seal.js [--seconds 1]
//
// Bounded: each case runs for --seconds (default 1) after a short warm-up.
const crypto = require('node:crypto')
const { Keyring, Sealer, chatContext } = require('..')

const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1]) || 1
const SIZES = [
  ['64 B', 64],
  ['256 B', 256],
  ['1 KiB', 1024],
  ['16 KiB', 16 * 1024],
  ['1 MiB', 1024 * 1024],
]

const sealer = new Sealer(Keyring.generate())
const room = 'lobby'
const context = chatContext(room, '0192f0c1-7a3e-7cc0-9b1e-3f5a2d4c8e10', 'ann')
const roomKey = Buffer.from(sealer.roomKey(room, sealer.primaryKeyId).key, 'base64')
const keyId = sealer.primaryKeyId

// node:crypto, written as a careful Node developer would.
function nodeSeal(plaintext) {
  const header = Buffer.allocUnsafe(18)
  header[0] = 1
  header[1] = 1
  header.writeUInt32BE(keyId, 2)
  crypto.randomFillSync(header, 6, 12)
  const cipher = crypto.createCipheriv('aes-256-gcm', roomKey, header.subarray(6))
  cipher.setAAD(Buffer.concat([header, context]))
  const body = cipher.update(plaintext)
  const final = cipher.final()
  return Buffer.concat([header, body, final, cipher.getAuthTag()]).toString('base64')
}

function nodeOpen(text) {
  const bytes = Buffer.from(text, 'base64')
  const header = bytes.subarray(0, 18)
  if (bytes[0] !== 1 || bytes[1] !== 1 || bytes.readUInt32BE(2) !== keyId) throw new Error('header')
  const decipher = crypto.createDecipheriv('aes-256-gcm', roomKey, header.subarray(6))
  decipher.setAAD(Buffer.concat([header, context]))
  decipher.setAuthTag(bytes.subarray(bytes.length - 16))
  return Buffer.concat([decipher.update(bytes.subarray(18, bytes.length - 16)), decipher.final()])
}

// What a chat client does with a message: envelope text in, text out.
function nodeOpenText(text) {
  return nodeOpen(text).toString('utf8')
}

function rate(fn, input) {
  const warmUntil = performance.now() + 200
  while (performance.now() < warmUntil) fn(input)
  let n = 0
  const start = performance.now()
  const end = start + seconds * 1000
  let now = start
  while (now < end) {
    for (let i = 0; i < 64; i++) fn(input)
    n += 64
    now = performance.now()
  }
  return (n * 1000) / (now - start)
}

const fmt = (r) => (r >= 1e6 ? `${(r / 1e6).toFixed(2)} M` : r >= 1e3 ? `${(r / 1e3).toFixed(1)} k` : r.toFixed(0))

console.log(`node ${process.version}, ${seconds} s per case; messages per second on one thread`)
console.log('encrypt: plaintext (Buffer) -> envelope text; decrypt: envelope text -> plaintext string (UTF-8)\n')
console.log('| size | addon encrypt | node:crypto encrypt | ratio | addon decrypt | node:crypto decrypt | ratio |')
console.log('|---|---|---|---|---|---|---|')
const rows = []
for (const [label, size] of SIZES) {
  const plaintext = Buffer.from('x'.repeat(size)) // text, so both can return a string
  const envelope = sealer.encrypt(plaintext, room, context)
  // Both sides must agree before they are timed.
  if (!nodeOpen(envelope).equals(plaintext)) throw new Error('node:crypto cannot open the addon envelope')
  if (!sealer.decryptBuffer(nodeSeal(plaintext), room, context).equals(plaintext)) throw new Error('addon cannot open node:crypto envelope')
  const addonSeal = rate((p) => sealer.encrypt(p, room, context), plaintext)
  const cryptoSeal = rate(nodeSeal, plaintext)
  const addonOpen = rate((e) => sealer.decrypt(e, room, context), envelope)
  const cryptoOpen = rate(nodeOpenText, envelope)
  const addonOpenBuf = rate((e) => sealer.decryptBuffer(e, room, context), envelope)
  const cryptoOpenBuf = rate(nodeOpen, envelope)
  rows.push([label, addonOpenBuf, cryptoOpenBuf])
  console.log(
    `| ${label} | ${fmt(addonSeal)} | ${fmt(cryptoSeal)} | ${(addonSeal / cryptoSeal).toFixed(2)}× | ${fmt(addonOpen)} | ${fmt(cryptoOpen)} | ${(addonOpen / cryptoOpen).toFixed(2)}× |`,
  )
}
console.log('\ndecrypt to a Buffer: envelope text -> plaintext bytes\n')
console.log('| size | addon decryptBuffer | node:crypto | ratio |')
console.log('|---|---|---|---|')
for (const [label, a, c] of rows) console.log(`| ${label} | ${fmt(a)} | ${fmt(c)} | ${(a / c).toFixed(2)}× |`)
