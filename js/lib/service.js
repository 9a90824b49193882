'use strict'
// POST /encrypt and /decrypt: the tutorial microservice's API, with real
// envelopes (room "" unless given, the caller's context string). They are a
// decryption oracle, so they need the service token unless this server
// listens on loopback only — the rule of the Rust server.
const crypto = require('node:crypto')
const { ProtocolError, fromThrown, bad } = require('./errors')

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost'])

function serviceAuth(config) {
  if (config.serviceToken) return { kind: 'token', token: Buffer.from(config.serviceToken) }
  if (LOOPBACK.has(config.listen.host)) return { kind: 'loopback' }
  return { kind: 'disabled' }
}

function describe(auth) {
  return {
    loopback: '/encrypt and /decrypt are open to loopback clients (no service token set)',
    token: '/encrypt and /decrypt require the service token',
    disabled: '/encrypt and /decrypt are disabled: listening beyond loopback without CHATSEAL_SERVICE_TOKEN',
  }[auth.kind]
}

function check(auth, req) {
  if (auth.kind === 'loopback') return
  if (auth.kind === 'disabled') {
    throw new ProtocolError('UNAUTHORIZED', 'service endpoints need CHATSEAL_SERVICE_TOKEN when not loopback-only')
  }
  const header = req.get('authorization') || ''
  const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '')
  const ok = given.length === auth.token.length && crypto.timingSafeEqual(given, auth.token)
  if (!ok) throw new ProtocolError('UNAUTHORIZED', 'missing or wrong service token')
}

function fields(body, required, shape) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw bad(`expected ${shape}`)
  // Other fields are ignored, as the Rust server's serde does.
  for (const name of ['room', 'context', required]) {
    if (body[name] !== undefined && typeof body[name] !== 'string') throw bad(`expected ${shape}: ${name} must be a string`)
  }
  if (typeof body[required] !== 'string') throw bad(`expected ${shape}: missing field \`${required}\``)
  return { value: body[required], room: body.room ?? '', context: body.context ?? '' }
}

/** Registers the routes on the express `app`. */
function routes(app, { config, sealer, log }) {
  const auth = serviceAuth(config)
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
      const { value, room, context } = fields(body, 'message', '{ message, room?, context? }')
      if (Buffer.byteLength(value) > config.maxMessageBytes) {
        throw new ProtocolError('TOO_LARGE', `message is larger than ${config.maxMessageBytes} bytes`)
      }
      return { encrypted: sealer.encrypt(value, room, context) }
    }),
  )
  app.post(
    '/decrypt',
    handle((body) => {
      const { value, room, context } = fields(body, 'encrypted', '{ encrypted, room?, context? }')
      return { message: sealer.decrypt(value, room, context) }
    }),
  )
  return describe(auth)
}

module.exports = { routes }
