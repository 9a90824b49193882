'use strict'
// The chat protocol of DESIGN §3 on socket.io: handshake, lobby, join,
// leave, chat message. Events of one connection are handled one after the
// other in arrival order, also when sealing is asynchronous (remote mode).
const { ProtocolError, fromThrown } = require('./errors')
const validate = require('./validate')
const { RateLimiter } = require('./rate')
const { uuidv7 } = require('./uuid')
const { NOT_AN_OBJECT } = require('./parser')
const presence = require('./presence')
const { keyIdOf } = require('./sealing')

const RECENT_ON_JOIN = 50
const TYPING_PER_SEC = 2
const TYPING_BURST = 5
const GUEST_MARK = '~'
/**
 * The key epoch of every room here: a room starts a new epoch when someone
 * is removed from it, and this server has no accounts, members or private
 * rooms (docs/protocol.md). Sent anyway, so clients see one protocol.
 */
const EPOCH = 0

/** The room's keys as join acks and `room key` events carry them: `{ id, epoch, key }`. */
function epochKey({ id, key }) {
  return { id, epoch: EPOCH, key }
}

/**
 * Attaches the protocol to the socket.io server `io`. Returns `drain()`:
 * resolves once every event received so far is handled and acknowledged.
 */
function attach(io, { config, sealer, sealing, history, log }) {
  let inFlight = 0
  let idle = []
  const settled = () => {
    if (--inFlight > 0) return
    for (const resolve of idle) resolve()
    idle = []
  }
  io.use((socket, next) => {
    try {
      socket.data.name = authenticate(socket.handshake.auth, config)
      next()
    } catch (err) {
      next(new Error(`${err.code}: ${err.message}`))
    }
  })

  io.on('connection', (socket) => {
    socket.join(validate.LOBBY)
    const limiter = new RateLimiter(config.ratePerSec, config.rateBurst)
    let queue = Promise.resolve()
    // Runs `handler` after every earlier event of this socket, then acks,
    // then runs what the handler left for after its ack (the broadcast of a
    // chat message: the sender gets its ack before its own copy).
    // `arrive` runs at once, on arrival, and its result is what `handler` gets.
    const serial = (handler, arrive = (p) => p) => (...args) => {
      const ack = typeof args[args.length - 1] === 'function' ? args.pop() : () => {}
      const payload = arrive(args[0])
      inFlight++
      queue = queue.then(async () => {
        const afterAck = []
        let reply
        try {
          reply = await handler(payload, afterAck)
        } catch (err) {
          reply = fromThrown(err, log).toAck()
        }
        ack(reply)
        for (const fn of afterAck) fn()
        settled()
      })
    }
    const known = new Set(['join', 'leave', 'chat message', 'refresh', 'typing'])
    // `typing` is relayed, never stored: 2/s, bursts of 5 (the Rust server's rate).
    const typingLimiter = new RateLimiter(TYPING_PER_SEC, TYPING_BURST)
    socket.on('typing', serial((p) => typing(socket, typingLimiter, p)))
    socket.on('join', serial((p) => join(socket, p)))
    socket.on('leave', serial((p) => leave(socket, p)))
    // The rate limit counts messages as they arrive, not when the queue
    // reaches them: with a remote /encrypt each seal waits for the one
    // before, and a flood would otherwise drain slower than it refills.
    socket.on(
      'chat message',
      serial((admitted, afterAck) => send(socket, admitted, afterAck), (p) => admit(limiter, p)),
    )
    // Sessions end at a token's exp unless refreshed (docs/protocol.md §2);
    // this server has guests only, and a guest has no token to refresh.
    socket.on(
      'refresh',
      serial(() => {
        throw new ProtocolError('UNAUTHORIZED', 'a guest has no session token to refresh')
      }),
    )
    socket.onAny((event, ...args) => {
      if (known.has(event)) return
      const ack = args[args.length - 1]
      if (typeof ack === 'function') ack(new ProtocolError('BAD_REQUEST', `unknown event ${JSON.stringify(event)}`).toAck())
    })
  })

  return function drain() {
    return inFlight === 0 ? Promise.resolve() : new Promise((resolve) => idle.push(resolve))
  }

  function join(socket, payload) {
    const req = validate.roomRequest(payload)
    const keys = config.plain ? [] : sealer.roomKeys(req.room).map(epochKey)
    socket.join(req.room)
    const missed =
      req.since === null
        ? history.latest(req.room, Math.min(RECENT_ON_JOIN, config.historyLimit))
        : history.since(req.room, req.since, config.historyLimit)
    return {
      ok: true,
      room: req.room,
      epoch: EPOCH,
      keys,
      missed,
      latestSeq: history.latestSeq(req.room),
      historyId: history.id,
      presence: presence.online(io, req.room),
    }
  }

  function typing(socket, limiter, payload) {
    const req = validate.typingRequest(payload)
    if (!limiter.take()) throw new ProtocolError('RATE_LIMITED', 'too many typing signals: slow down')
    if (!socket.rooms.has(req.room)) throw new ProtocolError('FORBIDDEN', 'join the room before typing in it')
    // Where presence is off (a lobby of thousands) typing is too.
    if ((io.sockets.adapter.rooms.get(req.room)?.size ?? 0) > presence.MAX_ROOM) {
      throw new ProtocolError('TOO_LARGE', `typing is off in rooms of more than ${presence.MAX_ROOM} people`)
    }
    socket.to(req.room).emit('typing', { room: req.room, name: socket.data.name, typing: req.typing })
    return { ok: true }
  }

  function leave(socket, payload) {
    const req = validate.roomRequest(payload)
    socket.leave(req.room)
    return { ok: true }
  }

  /** A `chat message` payload checked on arrival: its request, or the error to ack. */
  function admit(limiter, payload) {
    try {
      const req = validate.sendRequest(payload, config.maxMessageBytes)
      if (!limiter.take()) throw new ProtocolError('RATE_LIMITED', 'too many messages: slow down')
      return req
    } catch (err) {
      return err instanceof Error ? err : new ProtocolError('BAD_REQUEST', 'invalid chat message')
    }
  }

  async function send(socket, admitted, afterAck) {
    if (admitted instanceof Error) throw admitted
    const req = admitted
    if (!socket.rooms.has(req.room)) throw new ProtocolError('FORBIDDEN', 'join the room before sending to it')
    const sender = socket.data.name
    const first = history.duplicate(req.room, sender, req.clientId)
    if (first) return first
    const id = uuidv7()
    const ts = Date.now()
    if (config.plain) {
      // The benchmarks' upper bound: no sealing, nothing kept but the count.
      const seq = history.room(req.room).seq++ + 1
      const plain = { id, room: req.room, seq, sender, ts, keyId: 0, epoch: EPOCH, message: req.message }
      afterAck.push(() => io.to(req.room).emit('chat message', plain))
      return { ok: true, id, seq, ts }
    }
    // In-process sealing answers at once: no await (and no turn of the
    // microtask queue) unless the sealing is remote.
    let envelope = sealing.seal(req.room, id, sender, req.message)
    if (typeof envelope !== 'string') envelope = await envelope
    // A resend may have raced in while a remote seal was in flight.
    const raced = history.duplicate(req.room, sender, req.clientId)
    if (raced) return raced
    const keyId = keyIdOf(envelope)
    const stored = history.append({ id, room: req.room, sender, ts, keyId, epoch: EPOCH, message: envelope }, req.clientId)
    afterAck.push(() => io.to(req.room).emit('chat message', stored))
    return { ok: true, id, seq: stored.seq, ts }
  }
}

function authenticate(auth, config) {
  auth = auth ?? {}
  if (typeof auth !== 'object' || Array.isArray(auth) || auth[NOT_AN_OBJECT]) throw new ProtocolError('BAD_REQUEST', 'auth must be an object')
  if (auth.token !== undefined) {
    if (typeof auth.token !== 'string') throw new ProtocolError('BAD_REQUEST', 'auth.token must be a string')
    throw new ProtocolError('UNAUTHORIZED', 'invalid token: this server has no accounts; connect as a guest')
  }
  if (!config.allowGuests) throw new ProtocolError('UNAUTHORIZED', 'guests are not allowed on this server')
  // A guest's sender name is marked with `~`, which no account name has, so
  // guests and accounts never collide (docs/protocol.md §1).
  if (auth.name === undefined) return `${GUEST_MARK}guest-${Math.floor(Math.random() * 0x1000000).toString(16).padStart(6, '0')}`
  return GUEST_MARK + validate.guestName(auth.name)
}

/**
 * Disconnects readers whose outgoing buffer has grown past `limit` packets:
 * they would otherwise hold unbounded memory; they catch up with `since`.
 */
function watchSlowReaders(io, limit, log) {
  const timer = setInterval(() => {
    for (const socket of io.sockets.sockets.values()) {
      if (socket.conn.writeBuffer.length > limit) {
        log(`reader ${socket.id} too slow (${socket.conn.writeBuffer.length} queued): disconnecting it`)
        socket.disconnect(true)
      }
    }
  }, 1000)
  timer.unref()
  return timer
}

module.exports = { attach, watchSlowReaders, epochKey, EPOCH }
