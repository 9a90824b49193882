'use strict'
// The chatseal client: one Socket.IO connection that survives reconnects,
// server restarts and a switch to another server of a cluster without
// losing, repeating or reordering a message.
//
// - Rooms (room.js) keep the last seq shown; every join after a reconnect is
//   a catch-up with `since`, paged until `latestSeq`; live messages are shown
//   in seq order, once (dedup by seq), and a gap triggers a catch-up.
// - Sends (outbox.js) carry a clientId and are resent until acked, only
//   after their room has been joined again on the new connection (a resend
//   before the rejoin gets FORBIDDEN: the bug this SDK exists to avoid).
// - Tokens are refreshed in place before `exp` with `getToken`; without it
//   the client goes to the `expired` state and keeps its pending sends for
//   `setToken` after a new login.
const { io } = require('socket.io-client')
const { Emitter } = require('./emitter')
const { ChatError, fromAck, fromConnectError } = require('./errors')
const { RoomKeys } = require('./envelope')
const { Room } = require('./room')
const { Outbox } = require('./outbox')
const token = require('./token')
const { CATCH_UP_CONCURRENCY, backoffDelay, Slots } = require('./backoff')

const DEFAULTS = {
  ackTimeout: 10000,
  outboxLimit: 200,
  refreshBefore: 60000,
  reconnectionDelayMax: 5000,
  transports: ['websocket'],
}
const ROOM_MAX = 64
/** Join acks page by at most this many (the servers' history limit is 500). */
const HISTORY_PAGE_MAX = 500
const OWN_IDS_MAX = 10000
/** Answers to a `join` that mean "not now": waited out on the same connection, never a room failure. */
const JOIN_TRANSIENT = new Set(['RATE_LIMITED', 'INTERNAL'])
/** RATE_LIMITED answers one `join` request is retried through before its caller sees the error. */
const JOIN_RETRIES = 8
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

class Client extends Emitter {
  constructor(options) {
    super()
    if (!options || typeof options !== 'object') throw new TypeError('connect({ url, token | name }) needs options')
    if (typeof options.url !== 'string' || !options.url) throw new TypeError('url must be a string')
    if (options.token !== undefined && typeof options.token !== 'string') throw new TypeError('token must be a string')
    if (options.name !== undefined && typeof options.name !== 'string') throw new TypeError('name must be a string')
    if (options.token && options.name) throw new TypeError('give token or name, not both')
    if (options.getToken !== undefined && typeof options.getToken !== 'function') throw new TypeError('getToken must be a function')
    this.options = { ...DEFAULTS, ...options }
    this.url = options.url.replace(/\/+$/, '')
    this.token = options.token || null
    this.name = options.name || null
    this.getToken = options.getToken || null
    this.keys = new RoomKeys()
    this.rooms = new Map()
    this.outbox = new Outbox(this, this.options.outboxLimit)
    this.ownIds = new Set()
    // Catch-ups in flight on this connection (see backoff.js).
    this.catchUps = new Slots(CATCH_UP_CONCURRENCY)
    this.generation = 0
    this.status = { state: 'connecting', reason: 'starting', code: null }
    this.closed = false
    this.expiredByServer = false
    this.expiredReason = 'token expired'
    this.refreshTimer = null
    this.retryTimer = null
    this.gettingToken = null
    this.socket = io(this.url, {
      // A function: every reconnect reads the current token.
      auth: (cb) => cb(this.token ? { token: this.token } : this.name ? { name: this.name } : {}),
      transports: this.options.transports,
      reconnectionDelayMax: this.options.reconnectionDelayMax,
      autoConnect: false,
      forceNew: true,
    })
    // Sends kept from an earlier session (e.g. across a page reload): the same
    // clientIds, so any that were stored already are not stored again.
    for (const p of Array.isArray(options.pending) ? options.pending : []) {
      if (p && typeof p.clientId === 'string' && typeof p.room === 'string' && typeof p.text === 'string') {
        this.outbox.add(p.room, p.text, p.clientId).catch(() => {})
      }
    }
    this.wire()
    this.start()
  }

  /** The name others see: the token's subject or the guest name (null for an anonymous guest). */
  get user() {
    return this.token ? token.subject(this.token) : this.name
  }

  /** Ids acked to this client (the newest OWN_IDS_MAX): how its own messages are known. */
  rememberOwn(id) {
    this.ownIds.add(id)
    if (this.ownIds.size > OWN_IDS_MAX) this.ownIds.delete(this.ownIds.values().next().value)
  }

  /** Ours: acked to us, or sent under our name (guest names may be shown as `~name`). */
  isOwn(msg) {
    if (this.ownIds.has(msg.id)) return true
    const me = this.user
    return Boolean(me) && (msg.sender === me || msg.sender === `~${me}`)
  }

  wire() {
    const s = this.socket
    s.on('connect', () => this.onConnect())
    s.on('disconnect', (reason) => this.onDisconnect(reason))
    s.on('connect_error', (err) => this.onConnectError(err))
    s.on('chat message', (msg) => this.onMessage(msg))
    s.on('room key', (ev) => this.onRoomKey(ev))
    s.on('presence', (ev) => this.onPresence(ev))
    // Removed from a private room, or the room was deleted: it is gone.
    s.on('room closed', (ev) => {
      const room = ev && typeof ev.room === 'string' ? this.rooms.get(ev.room) : null
      if (!room) return
      const message = typeof ev.message === 'string' ? ev.message.slice(0, 200) : 'room closed'
      this.roomFailed(room, new ChatError(typeof ev.code === 'string' ? ev.code : 'FORBIDDEN', message))
    })
    s.on('typing', (ev) => {
      if (ev && typeof ev.room === 'string' && this.rooms.has(ev.room) && typeof ev.name === 'string') {
        this.emit('typing', { room: ev.room, name: ev.name, typing: ev.typing !== false })
      }
    })
    s.on('session expired', (ev) => {
      this.expiredByServer = true
      this.expiredReason = ev && typeof ev.message === 'string' ? ev.message.slice(0, 200) : 'token expired'
    })
  }

  setStatus(state, reason = null, code = null) {
    if (this.status.state === state && this.status.reason === reason && this.status.code === code) return
    this.status = { state, reason, code }
    this.emit('status', { ...this.status })
  }

  /** Connects, first getting a fresh token if the one we hold has expired. */
  async start() {
    if (this.closed) return
    if (this.token && this.expired()) {
      if (!(await this.renewToken())) return
    }
    this.setStatus('connecting', 'connecting')
    this.socket.connect()
  }

  expired() {
    const exp = token.expiresAt(this.token)
    return exp !== null && exp <= Date.now()
  }

  async onConnect() {
    const gen = ++this.generation
    this.expiredByServer = false
    // A new connection has fresh limits: slots held on the old one do not count.
    this.catchUps = new Slots(CATCH_UP_CONCURRENCY)
    this.setStatus('connecting', 'joining rooms')
    const rooms = [...this.rooms.values()]
    await Promise.all(rooms.map((room) => this.rejoin(room, gen)))
    if (gen !== this.generation || !this.socket.connected) return
    this.setStatus('online')
    this.scheduleRefresh()
  }

  async rejoin(room, gen) {
    for (let attempt = 0; ; attempt++) {
      try {
        await room.catchUp(gen)
        this.outbox.pump(room.name)
        return
      } catch (err) {
        if (gen !== this.generation || !this.socket.connected || this.rooms.get(room.name) !== room) return
        if (err.code === 'TIMEOUT' || err.code === 'UNAVAILABLE') {
          // The server did not answer: start over on a fresh connection.
          this.socket.disconnect()
          this.retryLater(1000)
          return
        }
        if (!JOIN_TRANSIENT.has(err.code)) {
          this.roomFailed(room, err)
          return
        }
        // Over the join limits (or a passing server fault): the room and its
        // pending sends stay; join it again after a while on this connection.
        await sleep(backoffDelay(attempt, err.retryAfterMs))
        if (gen !== this.generation || !this.socket.connected || this.rooms.get(room.name) !== room) return
      }
    }
  }

  /**
   * A `join`, paced for the servers' per-connection limits: catch-ups
   * (with `since`) take one of a few slots, and RATE_LIMITED is waited out
   * (the server's hint, else jittered exponential backoff) and asked again,
   * up to JOIN_RETRIES times, while connection `gen` lasts.
   */
  async joinRequest(payload, gen = this.generation) {
    const once = () => this.request('join', payload)
    for (let attempt = 0; ; attempt++) {
      try {
        return await (payload.since === undefined ? once() : this.catchUps.run(once))
      } catch (err) {
        if (err.code !== 'RATE_LIMITED' || attempt >= JOIN_RETRIES) throw err
        await sleep(backoffDelay(attempt, err.retryAfterMs))
        if (this.closed || gen !== this.generation || !this.socket.connected) throw err
      }
    }
  }

  /** A room we can no longer be in (e.g. removed from a private room). */
  roomFailed(room, err) {
    this.rooms.delete(room.name)
    room.fail(err)
    this.outbox.failRoom(room.name, err)
    this.emit('room error', { room: room.name, code: err.code, message: err.reason })
  }

  onDisconnect(reason) {
    clearTimeout(this.refreshTimer)
    if (this.closed) return
    if (this.expiredByServer) {
      this.onExpired(this.expiredReason)
      return
    }
    this.setStatus('offline', reason)
    // The server closed us (a graceful shutdown, a kick): Socket.IO does not
    // reconnect by itself after that.
    if (reason === 'io server disconnect') this.retryLater(1000)
  }

  onConnectError(err) {
    if (this.closed) return
    const e = fromConnectError(err)
    if (this.socket.active) {
      // A network failure: Socket.IO retries with backoff.
      this.setStatus('offline', err.message, e.code === 'OFFLINE' ? null : e.code)
      return
    }
    if (e.code === 'UNAUTHORIZED' && this.token) {
      this.onExpired(e.reason)
    } else if (e.code === 'UNAVAILABLE') {
      this.setStatus('offline', e.reason, e.code)
      this.retryLater(2000)
    } else {
      // Refused for good (BAD_REQUEST, FORBIDDEN: a name taken by an account).
      this.setStatus('offline', e.reason, e.code)
      this.emit('refused', { code: e.code, message: e.reason })
    }
  }

  retryLater(ms) {
    clearTimeout(this.retryTimer)
    this.retryTimer = setTimeout(() => {
      if (!this.closed && !this.socket.connected && this.status.state !== 'expired') this.start()
    }, ms)
  }

  /** The token no longer works: renew it with getToken, or wait for setToken. */
  async onExpired(reason) {
    this.expiredByServer = false
    this.socket.disconnect()
    if (await this.renewToken(reason)) this.start()
  }

  /** Gets a new token from getToken; without one (or if it fails) the state is `expired`. */
  async renewToken(reason = 'token expired') {
    if (this.getToken) {
      try {
        const fresh = await this.callGetToken()
        if (fresh && !this.closed) {
          this.token = fresh
          return true
        }
      } catch {
        // fall through to expired
      }
    }
    this.setStatus('expired', reason, 'UNAUTHORIZED')
    return false
  }

  callGetToken() {
    if (!this.gettingToken) {
      this.gettingToken = Promise.resolve()
        .then(() => this.getToken())
        .then((t) => {
          if (typeof t !== 'string' || !t) throw new ChatError('UNAUTHORIZED', 'getToken gave no token')
          return t
        })
        .finally(() => {
          this.gettingToken = null
        })
    }
    return this.gettingToken
  }

  /** Calls getToken shortly before exp and refreshes the session in place. */
  scheduleRefresh() {
    clearTimeout(this.refreshTimer)
    if (!this.getToken || !this.token) return
    const exp = token.expiresAt(this.token)
    if (exp === null) return
    const now = Date.now()
    const life = exp - (token.issuedAt(this.token) ?? now)
    const lead = Math.min(this.options.refreshBefore, Math.max(500, life / 2))
    this.refreshTimer = setTimeout(() => this.refresh().catch(() => {}), Math.max(0, exp - lead - now))
  }

  /** Refreshes now: a new token from getToken, given to the server with `refresh`. */
  async refresh() {
    const fresh = await this.callGetToken()
    this.token = fresh
    if (this.socket.connected) {
      let ack
      try {
        ack = await this.socket.timeout(this.options.ackTimeout).emitWithAck('refresh', { token: fresh })
      } catch {
        ack = null
      }
      if (ack && !ack.ok) {
        const code = ack.error?.code
        this.emit('token', { ok: false, code })
        // BAD_REQUEST: a server without `refresh`; the new token serves the
        // next reconnect. Otherwise try again a little later, while the old
        // token lasts.
        clearTimeout(this.refreshTimer)
        if (code !== 'BAD_REQUEST') this.refreshTimer = setTimeout(() => this.refresh().catch(() => {}), 2000)
        return
      }
    }
    this.emit('token', { ok: true, expiresAt: token.expiresAt(fresh) })
    this.scheduleRefresh()
  }

  /** After a new login: use this token from now on, and resume if we were expired. */
  setToken(fresh) {
    if (typeof fresh !== 'string' || !fresh) throw new TypeError('token must be a string')
    this.token = fresh
    this.name = null
    if (this.closed) return
    if (this.socket.connected) {
      this.socket.timeout(this.options.ackTimeout).emitWithAck('refresh', { token: fresh }).catch(() => {})
      this.scheduleRefresh()
    } else {
      clearTimeout(this.retryTimer)
      this.start()
    }
  }

  onMessage(msg) {
    if (!msg || typeof msg !== 'object' || typeof msg.room !== 'string' || !Number.isSafeInteger(msg.seq)) return
    this.rooms.get(msg.room)?.receive(msg)
  }

  onRoomKey(ev) {
    if (!ev || typeof ev.room !== 'string' || !ev.key) return
    this.rooms.get(ev.room)?.addKey(ev.key)
  }

  onPresence(ev) {
    if (!ev || typeof ev.room !== 'string' || typeof ev.name !== 'string') return
    this.rooms.get(ev.room)?.presence(ev.name, ev.online === true)
  }

  /** Emits an ack-ed event; resolves with the ok ack or throws ChatError. */
  async request(event, payload) {
    if (!this.socket.connected) throw new ChatError('OFFLINE', 'not connected')
    let ack
    try {
      ack = await this.socket.timeout(this.options.ackTimeout).emitWithAck(event, payload)
    } catch {
      throw new ChatError('TIMEOUT', `no answer to ${event} in ${this.options.ackTimeout} ms`)
    }
    if (!ack || ack.ok !== true) throw fromAck(ack && ack.error)
    return ack
  }

  // ---- the public API ----

  /** Joins a room: resolves once joined (its latest messages are emitted first). */
  join(room, { since } = {}) {
    try {
      checkRoom(room)
    } catch (err) {
      return Promise.reject(err)
    }
    if (since !== undefined && !(Number.isSafeInteger(since) && since >= 0)) throw new TypeError('since must be a seq (0 or more)')
    if (this.closed) return Promise.reject(new ChatError('CLOSED', 'the client is closed'))
    let state = this.rooms.get(room)
    if (!state) {
      state = new Room(this, room, since)
      this.rooms.set(room, state)
      // Offline: the next connection joins it with the others.
      if (this.socket.connected) this.rejoin(state, this.generation)
    }
    return state.joined
  }

  /** Leaves a room: no more messages from it; its pending sends fail with LEFT. */
  async leave(room) {
    checkRoom(room)
    const state = this.rooms.get(room)
    if (!state) return
    this.rooms.delete(room)
    const err = new ChatError('LEFT', `left ${room}`)
    state.fail(err)
    this.outbox.failRoom(room, err)
    if (this.socket.connected) await this.request('leave', { room }).catch(() => {})
  }

  /** Sends text to a joined room; resolves with `{ id, seq, ts, clientId }` once stored. */
  send(room, text) {
    try {
      checkRoom(room)
    } catch (err) {
      return Promise.reject(err)
    }
    if (typeof text !== 'string' || !text) return Promise.reject(new TypeError('text must be a non-empty string'))
    if (!this.rooms.has(room)) return Promise.reject(new ChatError('NOT_JOINED', `join ${room} before sending to it`))
    return this.outbox.add(room, text)
  }

  /** Sends again a message that failed (same clientId: never stored twice). */
  retry(clientId) {
    return this.outbox.retry(clientId)
  }

  /** Forgets a failed or pending message. */
  discard(clientId) {
    this.outbox.discard(clientId)
  }

  /** Messages not yet stored, and those that failed: `{ clientId, room, text, state, error }`. */
  pending() {
    return this.outbox.list()
  }

  /**
   * Tells a joined room you are typing (or, with false, that you stopped).
   * Never stored; send it again every few seconds while typing (others let
   * it lapse). Rejects with ChatError (RATE_LIMITED over 2/s, OFFLINE).
   */
  async typing(room, typing = true) {
    checkRoom(room)
    if (!this.rooms.has(room)) throw new ChatError('NOT_JOINED', `join ${room} before typing in it`)
    await this.request('typing', { room, typing: typing !== false })
  }

  /** Who is online in a joined room, sorted; null when the room is too large for presence (or not joined yet). */
  online(room) {
    const names = this.rooms.get(room)?.online
    return names ? [...names].sort() : null
  }

  /** The last seq shown for a room (null before its first join ack). */
  lastSeq(room) {
    return this.rooms.get(room)?.lastSeq ?? null
  }

  joinedRooms() {
    return [...this.rooms.keys()]
  }

  /**
   * Older messages of a joined room, oldest first: `before` a seq (default:
   * the oldest shown), at most `limit` (default 50, at most 500). Over the
   * HTTP API with a token; guests (and the Node server, which has no history
   * route) page with `join { since }` instead.
   */
  async history(room, { before, limit = 50 } = {}) {
    checkRoom(room)
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > HISTORY_PAGE_MAX) throw new TypeError('limit must be 1 to 500')
    const state = this.rooms.get(room)
    if (!state) throw new ChatError('NOT_JOINED', `join ${room} before reading its history`)
    if (before === undefined) before = state.firstSeq ?? (state.lastSeq ?? 0) + 1
    if (!Number.isSafeInteger(before) || before < 1) throw new TypeError('before must be a seq')
    if (before === 1) return []
    let raw = null
    if (this.token) raw = await this.httpHistory(room, before, limit)
    const fresh = raw === null // joinHistory's acks brought the room's keys
    if (raw === null) raw = await this.joinHistory(state, before, limit)
    const out = []
    for (const msg of raw) out.push(await state.open(msg))
    // A key this client lacks (an epoch whose `room key` event it missed):
    // join again for the room's keys, and open those messages once more.
    const noKey = out.map((m, i) => (m.error && m.error.code === 'NO_KEY' ? i : -1)).filter((i) => i >= 0)
    if (!fresh && noKey.length && (await this.fetchKeys(state))) {
      for (const i of noKey) out[i] = await state.open(raw[i])
    }
    return out
  }

  /**
   * Joins a room again for its keys (every epoch's, from the join ack);
   * only the keys are taken, and only from the history the room shows.
   * False when the join failed (the messages stay NO_KEY).
   */
  async fetchKeys(state) {
    let ack
    try {
      ack = await this.joinRequest(state.lastSeq === null ? { room: state.name } : { room: state.name, since: state.lastSeq })
    } catch {
      return false
    }
    const id = typeof ack.historyId === 'string' ? ack.historyId : null
    if (id !== null && state.historyId !== null && id !== state.historyId) return false
    await state.addKeys(ack.keys)
    return true
  }

  async httpHistory(room, before, limit) {
    const url = `${this.url}/api/rooms/${encodeURIComponent(room)}/messages?before=${before}&limit=${limit}`
    let res
    try {
      res = await fetch(url, { headers: { authorization: `Bearer ${this.token}` } })
    } catch (err) {
      throw new ChatError('OFFLINE', err.message)
    }
    if (res.status === 404) {
      const body = await res.json().catch(() => null)
      // No history route on this server (the Node server): page over the socket.
      if (!body || !body.error || /route/i.test(body.error.message)) return null
      throw fromAck(body.error)
    }
    const body = await res.json().catch(() => null)
    if (!res.ok) throw fromAck(body && body.error)
    if (!Array.isArray(body)) throw new ChatError('INTERNAL', 'history is not a list')
    return body
  }

  /** `join { since }` from `limit` before `before`, paged (a server may cut a page short). */
  async joinHistory(state, before, limit) {
    const room = state.name
    const out = []
    let since = Math.max(0, before - 1 - limit)
    for (;;) {
      const ack = await this.joinRequest({ room, since })
      await state.addKeys(ack.keys)
      const missed = Array.isArray(ack.missed) ? ack.missed : []
      for (const m of missed) if (m.seq > since && m.seq < before) out.push(m)
      const last = missed.length ? missed[missed.length - 1].seq : null
      if (last === null || last <= since || last >= before - 1) break
      since = last
    }
    return out.slice(-limit)
  }

  /** Disconnects for good. Pending sends are kept in `pending()` but never sent. */
  close() {
    this.closed = true
    clearTimeout(this.refreshTimer)
    clearTimeout(this.retryTimer)
    this.socket.close()
    this.setStatus('closed', 'closed')
  }
}

/** The protocol's room names (docs/protocol.md §2), checked before a round trip. */
function checkRoom(room) {
  // eslint-disable-next-line no-control-regex
  if (typeof room !== 'string' || !room || [...room].length > ROOM_MAX || /[\u0000-\u001f\u007f]/.test(room)) {
    throw new ChatError('BAD_REQUEST', 'a room name is 1 to 64 characters, no control characters')
  }
}

/** Connects to a chatseal server: `connect({ url, token | name, getToken? })`. */
function connect(options) {
  return new Client(options)
}

module.exports = { connect, Client, ChatError }
