'use strict'
// GET /api/rooms: the room directory, paged by name (docs/protocol.md §4).
// This server has guests only and no private rooms: it lists every room it
// holds history for. It has no accounts, so a request with a token is
// refused (as a bad token is on the Rust server), and it has no
// /api/rooms/:room/members (no membership to list; §5).
const { ProtocolError, fromThrown, bad } = require('./errors')

const DEFAULT_LIMIT = 50
const MAX_LIMIT = 200
const MAX_AFTER_BYTES = 256

function page(query) {
  for (const name of Object.keys(query)) {
    if (name !== 'after' && name !== 'limit') throw bad(`unknown query parameter \`${name}\``)
  }
  const { after = '', limit = String(DEFAULT_LIMIT) } = query
  if (typeof after !== 'string' || typeof limit !== 'string') throw bad('after and limit are given once')
  const n = /^\d{1,4}$/.test(limit) ? Number(limit) : NaN
  if (!(n >= 1 && n <= MAX_LIMIT)) throw bad(`limit is 1 to ${MAX_LIMIT}`)
  if (Buffer.byteLength(after) > MAX_AFTER_BYTES) throw bad(`after is at most ${MAX_AFTER_BYTES} bytes`)
  return { after, limit: n }
}

/** Registers the route on the express `app`. */
function routes(app, { history, log }) {
  app.get('/api/rooms', (req, res) => {
    try {
      if (req.get('authorization') !== undefined) throw new ProtocolError('UNAUTHORIZED', 'this server has no accounts: list rooms without a token')
      const { after, limit } = page(req.query)
      const rooms = history.list(after, limit).map(({ name, lastSeq }) => ({ name, owner: null, private: false, lastSeq }))
      res.json({ rooms, next: rooms.length === limit ? rooms[rooms.length - 1].name : null })
    } catch (err) {
      const { status, body } = fromThrown(err, log).toHttp()
      res.status(status).json(body)
    }
  })
}

module.exports = { routes }
