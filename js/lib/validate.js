'use strict'
// Validation of every payload, with the same rules, order and codes as the
// Rust server (server/src/chat/protocol.rs). Room names are checked by the
// engine itself, so the two servers cannot disagree on them.
const { validateChatRoom } = require('..')
const { ProtocolError, bad } = require('./errors')

const LOBBY = 'lobby'
const MAX_CLIENT_ID = 128
const NAME = /^[A-Za-z0-9_.-]{1,32}$/

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

function onlyKeys(obj, allowed, shape) {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) throw bad(`expected ${shape}: unknown field \`${key}\``)
  }
}

// A lone surrogate cannot be UTF-8: the engine would see U+FFFD instead,
// so every such name would get one room key. The Rust server's JSON parser
// refuses them; so does this one.
function wellFormed(text, what) {
  if (!text.isWellFormed()) throw bad(`${what} is not valid Unicode (a lone surrogate)`)
}

function checkRoom(room) {
  wellFormed(room, 'room')
  try {
    validateChatRoom(room)
  } catch (err) {
    throw bad(err.message)
  }
}

/** `join` / `leave`: `{ room, since? }`. */
function roomRequest(payload) {
  const shape = '{ room, since? }'
  if (!isPlainObject(payload)) throw bad(`expected ${shape}`)
  onlyKeys(payload, ['room', 'since'], shape)
  if (typeof payload.room !== 'string') throw bad(`expected ${shape}: room must be a string`)
  const since = payload.since ?? null
  if (since !== null && !Number.isSafeInteger(since)) throw bad(`expected ${shape}: since must be an integer`)
  checkRoom(payload.room)
  if (since !== null && since < 0) throw bad('since is a seq, 0 or more')
  return { room: payload.room, since }
}

/** `typing`: `{ room, typing? }` (`typing` defaults to true). */
function typingRequest(payload) {
  const shape = '{ room, typing? }'
  if (!isPlainObject(payload)) throw bad(`expected ${shape}`)
  onlyKeys(payload, ['room', 'typing'], shape)
  if (typeof payload.room !== 'string') throw bad(`expected ${shape}: room must be a string`)
  const typing = payload.typing ?? true
  if (typeof typing !== 'boolean') throw bad(`expected ${shape}: typing must be a boolean`)
  checkRoom(payload.room)
  return { room: payload.room, typing }
}

/** `chat message`: `{ message, room?, clientId? }`, or a bare string (the tutorial's). */
function sendRequest(payload, maxMessageBytes) {
  const shape = '{ message, room?, clientId? }'
  let req
  if (typeof payload === 'string') {
    req = { message: payload, room: LOBBY, clientId: null }
  } else {
    if (!isPlainObject(payload)) throw bad(`expected ${shape}`)
    onlyKeys(payload, ['message', 'room', 'clientId'], shape)
    if (typeof payload.message !== 'string') throw bad(`expected ${shape}: message must be a string`)
    const room = payload.room ?? LOBBY
    const clientId = payload.clientId ?? null
    if (typeof room !== 'string') throw bad(`expected ${shape}: room must be a string`)
    if (clientId !== null && typeof clientId !== 'string') throw bad(`expected ${shape}: clientId must be a string`)
    req = { message: payload.message, room, clientId }
  }
  checkRoom(req.room)
  wellFormed(req.message, 'message')
  if (req.clientId !== null) wellFormed(req.clientId, 'clientId')
  if (Buffer.byteLength(req.message, 'utf8') > maxMessageBytes) {
    throw new ProtocolError('TOO_LARGE', `message is larger than ${maxMessageBytes} bytes`)
  }
  if (req.clientId !== null && (req.clientId.length === 0 || Buffer.byteLength(req.clientId, 'utf8') > MAX_CLIENT_ID)) {
    throw bad(`clientId is 1 to ${MAX_CLIENT_ID} bytes`)
  }
  return req
}

/** A guest name: 1–32 of A–Z a–z 0–9 _ . - */
function guestName(name) {
  if (typeof name !== 'string') throw bad('auth.name must be a string')
  if (!NAME.test(name)) {
    throw bad(name.length < 1 || name.length > 32 ? 'a name is 1 to 32 characters' : "a name may use letters, digits, '_', '.' and '-'")
  }
  return name
}

module.exports = { roomRequest, sendRequest, typingRequest, guestName, LOBBY }
