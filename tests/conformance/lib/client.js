'use strict'
// A chat client as an application would write it: socket.io-client for the
// protocol, WebCrypto with the room keys from `join` to read messages.
const { io } = require('socket.io-client')
const { webcrypto } = require('node:crypto')

const subtle = webcrypto.subtle
const HEADER = 18

/** Connects with `auth`; resolves once connected, rejects with the connect_error. */
function connect(url, auth, opts = {}) {
  const socket = io(url, { auth, transports: ['websocket'], reconnection: false, forceNew: true, ...opts })
  socket.received = []
  socket.on('chat message', (m) => socket.received.push(m))
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket))
    socket.once('connect_error', (err) => {
      socket.close()
      reject(err)
    })
  })
}

/** Emits and waits for the ack (5 s). */
function request(socket, event, payload) {
  return socket.timeout(5000).emitWithAck(event, payload)
}

/** Waits until `predicate()` holds, or fails after `ms`. */
async function until(predicate, ms = 5000, what = 'condition') {
  const deadline = Date.now() + ms
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** The context of DESIGN §2: room ‖ 0 ‖ id ‖ 0 ‖ sender. */
function chatContext(room, id, sender) {
  return Buffer.from(`${room}\0${id}\0${sender}`, 'utf8')
}

/** Opens a Message with the room keys of a `join` ack, as a browser would. */
async function openMessage(keys, msg) {
  // A key is named by its master key id and the room's key epoch (0 when a
  // server sends none).
  const epoch = msg.epoch ?? 0
  const entry = keys.find((k) => k.id === msg.keyId && (k.epoch ?? 0) === epoch)
  if (!entry) throw new Error(`no room key ${msg.keyId} of epoch ${epoch}`)
  const bytes = Buffer.from(msg.message, 'base64')
  if (bytes.readUInt32BE(2) !== msg.keyId) throw new Error('keyId differs from the envelope header')
  const key = await subtle.importKey('raw', Buffer.from(entry.key, 'base64'), 'AES-GCM', false, ['decrypt'])
  const aad = Buffer.concat([bytes.subarray(0, HEADER), chatContext(msg.room, msg.id, msg.sender)])
  const plain = await subtle.decrypt(
    { name: 'AES-GCM', iv: bytes.subarray(6, HEADER), additionalData: aad },
    key,
    bytes.subarray(HEADER),
  )
  return Buffer.from(plain).toString('utf8')
}

module.exports = { connect, request, until, sleep, openMessage, chatContext }
