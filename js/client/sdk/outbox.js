'use strict'
// Sends that are not stored yet. Each has a clientId, so a resend is never
// stored twice (the server dedups by sender + clientId). An entry is emitted
// at most once per connection, and only once its room has been joined on
// that connection; a timeout or a reconnect sends it again. One entry per
// room is in flight at a time, in the order they were written: a retried
// one (RATE_LIMITED, UNAVAILABLE) is never overtaken by a later one, so a
// person's messages are stored in the order they typed them. Bounded: past
// `limit` entries a send fails at once with QUEUE_FULL.
const { ChatError, fromAck } = require('./errors')
const { messageId } = require('./crypto')

/** Codes after which the same message is sent again (nothing was stored). */
const RETRY = new Set(['UNAVAILABLE', 'RATE_LIMITED', 'INTERNAL'])

class Outbox {
  constructor(client, limit) {
    this.client = client
    this.limit = limit
    this.entries = new Map()
  }

  add(room, text, clientId = messageId()) {
    if (this.entries.size >= this.limit) {
      const err = new ChatError('QUEUE_FULL', `${this.limit} messages are waiting already`)
      this.client.emit('outbox', { clientId, room, text, state: 'failed', error: { code: err.code, message: err.reason }, ack: null })
      return Promise.reject(err)
    }
    const entry = { clientId, room, text, state: 'pending', error: null, ack: null, createdAt: Date.now(), sentOn: -1, attempts: 0 }
    this.entries.set(clientId, entry)
    const promise = this.arm(entry)
    this.changed(entry)
    this.pumpOne(entry)
    return promise
  }

  arm(entry) {
    return new Promise((resolve, reject) => {
      entry.resolve = resolve
      entry.reject = reject
    })
  }

  /** Sends what waits for `room` (or every room), in the order it was written. */
  pump(room) {
    for (const entry of this.entries.values()) if (room === undefined || entry.room === room) this.pumpOne(entry)
  }

  pumpOne(entry) {
    const c = this.client
    if (entry.state !== 'pending' || c.closed || !c.socket.connected) return
    const room = c.rooms.get(entry.room)
    if (!room || room.joinedGen !== c.generation || entry.sentOn === c.generation) return
    for (const earlier of this.entries.values()) {
      if (earlier === entry) break
      if (earlier.room === entry.room && earlier.state === 'pending') return // its turn comes after
    }
    const gen = c.generation
    entry.sentOn = gen
    entry.attempts++
    c.socket
      .timeout(c.options.ackTimeout)
      .emitWithAck('chat message', { room: entry.room, message: entry.text, clientId: entry.clientId })
      .then(
        (ack) => this.onAck(entry, gen, ack),
        () => this.onTimeout(entry, gen),
      )
  }

  onAck(entry, gen, ack) {
    if (entry.state !== 'pending') return
    if (ack && ack.ok === true) {
      entry.state = 'sent'
      entry.error = null
      entry.ack = { id: ack.id, seq: ack.seq, ts: ack.ts, clientId: entry.clientId }
      this.client.rememberOwn(ack.id)
      this.entries.delete(entry.clientId)
      this.changed(entry)
      entry.resolve(entry.ack)
      this.pump(entry.room)
      return
    }
    const err = fromAck(ack && ack.error)
    if (entry.sentOn === gen) entry.sentOn = -1
    if (RETRY.has(err.code)) {
      entry.error = { code: err.code, message: err.reason }
      this.changed(entry)
      setTimeout(() => this.pump(entry.room), Math.min(10000, 250 * 2 ** Math.min(entry.attempts, 6)))
      return
    }
    const room = this.client.rooms.get(entry.room)
    if (err.code === 'FORBIDDEN' && room && !entry.rejoined) {
      // Not in the room on this connection after all: join again, then resend.
      entry.rejoined = true
      room.joinedGen = -1
      room.catchUp(this.client.generation).then(
        () => this.pump(entry.room),
        (e) => {
          if (e.code === 'FORBIDDEN') this.client.roomFailed(room, e)
        },
      )
      return
    }
    this.fail(entry, err)
  }

  onTimeout(entry, gen) {
    if (entry.state !== 'pending') return
    if (entry.sentOn === gen) entry.sentOn = -1
    // Same clientId again: stored once whether or not the first one was.
    this.pumpOne(entry)
  }

  fail(entry, err) {
    entry.state = 'failed'
    entry.error = { code: err.code, message: err.reason }
    this.changed(entry)
    entry.reject(err)
    this.pump(entry.room)
  }

  failRoom(room, err) {
    for (const entry of this.entries.values()) if (entry.room === room && entry.state === 'pending') this.fail(entry, err)
  }

  retry(clientId) {
    const entry = this.entries.get(clientId)
    if (!entry || entry.state !== 'failed') return Promise.reject(new ChatError('NOT_FOUND', 'no failed message with this clientId'))
    if (!this.client.rooms.has(entry.room)) return Promise.reject(new ChatError('NOT_JOINED', `join ${entry.room} before sending to it`))
    entry.state = 'pending'
    entry.error = null
    entry.rejoined = false
    entry.sentOn = -1
    const promise = this.arm(entry)
    this.changed(entry)
    this.pumpOne(entry)
    return promise
  }

  discard(clientId) {
    const entry = this.entries.get(clientId)
    if (!entry) return
    this.entries.delete(clientId)
    const wasPending = entry.state === 'pending'
    entry.state = 'discarded'
    this.changed(entry)
    if (wasPending) {
      entry.reject(new ChatError('DISCARDED', 'discarded before it was stored'))
      this.pump(entry.room)
    }
  }

  list() {
    return [...this.entries.values()].map(view)
  }

  changed(entry) {
    this.client.emit('outbox', view(entry))
  }
}

function view(entry) {
  return {
    clientId: entry.clientId,
    room: entry.room,
    text: entry.text,
    state: entry.state,
    error: entry.error,
    ack: entry.ack,
    createdAt: entry.createdAt,
  }
}

module.exports = { Outbox }
