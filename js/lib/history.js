'use strict'
// The Node server's message store: per-room history in memory, bounded.
//
// This server keeps no database (that is the Rust server's job). Each room
// keeps its last `perRoom` messages; at most `maxRooms` rooms are kept, the
// least recently used dropped first. `join { since }` is exact while the
// reader's gap is inside that window. Dedup remembers the last `maxClientIds`
// (sender, clientId) pairs.

class History {
  constructor({ perRoom = 1000, maxRooms = 10000, maxClientIds = 100000 } = {}) {
    this.perRoom = perRoom
    this.maxRooms = maxRooms
    this.maxClientIds = maxClientIds
    // A room's array may run up to `slack` past perRoom before it is cut
    // back: cutting one off the front of a full array on every message
    // moved all of it each time (7 % of the server's time under load).
    this.slack = Math.max(16, perRoom >> 2)
    this.rooms = new Map() // room -> { seq, messages: [] } (Map order = recency)
    this.clientIds = new Map() // `${sender}\0${clientId}` -> ack
  }

  room(name) {
    let r = this.rooms.get(name)
    if (r) {
      this.rooms.delete(name) // move to most recent
    } else {
      r = { seq: 0, messages: [] }
      if (this.rooms.size >= this.maxRooms) this.rooms.delete(this.rooms.keys().next().value)
    }
    this.rooms.set(name, r)
    return r
  }

  /** The first ack of a resend, if this (sender, clientId) was seen. */
  duplicate(sender, clientId) {
    return clientId === null ? undefined : this.clientIds.get(`${sender}\0${clientId}`)
  }

  /** Numbers and keeps `message` (without seq); returns it with its seq. */
  append(message, clientId) {
    const r = this.room(message.room)
    const stored = { ...message, seq: ++r.seq }
    r.messages.push(stored)
    if (r.messages.length >= this.perRoom + this.slack) r.messages.splice(0, r.messages.length - this.perRoom)
    if (clientId !== null) {
      const key = `${message.sender}\0${clientId}`
      this.clientIds.set(key, { ok: true, id: stored.id, seq: stored.seq, ts: stored.ts })
      if (this.clientIds.size > this.maxClientIds) this.clientIds.delete(this.clientIds.keys().next().value)
    }
    return stored
  }

  latestSeq(room) {
    return this.rooms.get(room)?.seq ?? 0
  }

  /** Messages with seq > since, oldest first, at most `limit`. */
  since(room, since, limit) {
    const r = this.rooms.get(room)
    if (!r) return []
    const out = []
    const kept = r.messages
    for (let i = Math.max(0, kept.length - this.perRoom); i < kept.length; i++) {
      if (kept[i].seq > since) {
        out.push(kept[i])
        if (out.length === limit) break
      }
    }
    return out
  }

  /** The newest `limit` messages, oldest first. */
  latest(room, limit) {
    const r = this.rooms.get(room)
    return r && limit > 0 ? r.messages.slice(-Math.min(limit, this.perRoom)) : []
  }
}

module.exports = { History }
