'use strict'
// POST /encrypt and /decrypt: the tutorial microservice's API, with real
// envelopes (room "" unless given, at key epoch `epoch` or 0, the caller's
// context string). They are a decryption oracle, so they always need the
// service token: the listen address says nothing about who calls (a reverse
// proxy on the same host is a loopback client). The token is
// CHATSEAL_SERVICE_TOKEN, or one generated into <data dir>/service-token
// (0600) on first start — the Rust server's rule.
const crypto = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')
const { ProtocolError, fromThrown, bad } = require('./errors')

/** The token and where it came from (never logged itself). */
function serviceToken(config, log) {
  if (config.serviceToken !== null && config.serviceToken !== undefined) {
    const token = config.serviceToken.trim()
    if (!token) throw new Error('CHATSEAL_SERVICE_TOKEN is empty; unset it to use <data dir>/service-token')
    return { token: Buffer.from(token), source: 'CHATSEAL_SERVICE_TOKEN' }
  }
  const file = path.join(config.dataDir, 'service-token')
  let text
  try {
    text = fs.readFileSync(file, 'utf8')
    const mode = fs.statSync(file).mode
    if (mode & 0o077) throw new Error(`${file} is readable by group or others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`)
    if (!text.trim()) throw new Error(`${file} is empty`)
  } catch (err) {
    if (err.code !== 'ENOENT') throw err
    fs.mkdirSync(config.dataDir, { recursive: true })
    text = crypto.randomBytes(32).toString('base64url')
    fs.writeFileSync(file, text, { mode: 0o600, flag: 'wx' })
    log(`created a service token for /encrypt and /decrypt at ${file}`)
  }
  return { token: Buffer.from(text.trim()), source: file }
}

function check(auth, req) {
  const header = req.get('authorization') || ''
  const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '')
  const ok = given.length === auth.token.length && crypto.timingSafeEqual(given, auth.token)
  if (!ok) throw new ProtocolError('UNAUTHORIZED', 'missing or wrong service token')
}

// A room's key epoch is a u32 (docs/format.md §1); `epoch` may be left out
// (0), never null, fractional or out of range.
const MAX_EPOCH = 0xffffffff

function fields(body, required, shape) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw bad(`expected ${shape}`)
  // Other fields are ignored, as the Rust server's serde does.
  for (const name of ['room', 'context', required]) {
    if (body[name] !== undefined && typeof body[name] !== 'string') throw bad(`expected ${shape}: ${name} must be a string`)
  }
  if (typeof body[required] !== 'string') throw bad(`expected ${shape}: missing field \`${required}\``)
  const { epoch = 0 } = body
  if (!Number.isInteger(epoch) || epoch < 0 || epoch > MAX_EPOCH) {
    throw bad(`expected ${shape}: epoch must be an integer from 0 to ${MAX_EPOCH}`)
  }
  return { value: body[required], room: { room: body.room ?? '', epoch }, context: body.context ?? '' }
}

/** Registers the routes on the express `app`. */
function routes(app, { config, sealer, log }) {
  const auth = serviceToken(config, log)
  const handle = (fn) => (req, res) => {
    try {
      check(auth, req)
      res.json(fn(req.body))
    } catch (err) {
      const { status, body } = fromThrown(err, log).toHttp()
      res.status(status).json(body)
    }
  }
  app.post(
    '/encrypt',
    handle((body) => {
      const { value, room, context } = fields(body, 'message', '{ message, room?, epoch?, context? }')
      if (Buffer.byteLength(value) > config.maxMessageBytes) {
        throw new ProtocolError('TOO_LARGE', `message is larger than ${config.maxMessageBytes} bytes`)
      }
      return { encrypted: sealer.encrypt(value, room, context) }
    }),
  )
  app.post(
    '/decrypt',
    handle((body) => {
      const { value, room, context } = fields(body, 'encrypted', '{ encrypted, room?, epoch?, context? }')
      return { message: sealer.decrypt(value, room, context) }
    }),
  )
  return `/encrypt and /decrypt require the service token (Authorization: Bearer …) from ${auth.source}`
}

module.exports = { routes }
