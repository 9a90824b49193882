'use strict'
// The Node server's message store: per-room history in memory, bounded.
//
// This server keeps no database (that is the Rust server's job). Each room
// keeps its last `perRoom` messages and at most `roomBytes` of them; all
// rooms together keep at most `totalBytes`, the oldest messages of the
// room written to longest ago dropped first; at most `maxRooms` rooms are
// kept, the least recently used dropped first. Counting messages alone let
// 64 KiB messages fill the heap (≈1,300 of them killed a 192 MB heap, and
// with it all history). A room whose messages were dropped keeps its `seq`.
// `join { since }` is exact while the reader's gap is inside what is kept.
// Dedup remembers the last `maxClientIds` (room, sender, clientId): a resend
// is one in the same room by the same sender, never answered with another
// sender's or another room's message.
//
// `id` names this history: it is new at every start, as seqs start over
// (the `historyId` of a join ack, docs/protocol.md §2).

const crypto = require('node:crypto')

const MiB = 1024 * 1024

/** What a kept message costs, roughly: its strings and the object around them. */
function sizeOf(m) {
  return m.message.length + m.id.length + m.room.length + m.sender.length + 96
}

class History {
  constructor({ perRoom = 1000, maxRooms = 10000, maxClientIds = 100000, roomBytes = 8 * MiB, totalBytes = 64 * MiB } = {}) {
    this.id = crypto.randomUUID()
    this.perRoom = perRoom
    this.maxRooms = maxRooms
    this.maxClientIds = maxClientIds
    this.roomBytes = roomBytes
    this.totalBytes = totalBytes
    this.bytes = 0 // of every kept message
    // A room's array may run up to `slack` dropped entries before it is
    // cut back: cutting one off the front of a full array on every message
    // moved all of it each time (7 % of the server's time under load).
    this.slack = Math.max(16, perRoom >> 2)
    this.rooms = new Map() // room -> { seq, messages: [], head, bytes } (Map order = recency)
    this.holding = new Map() // the rooms with kept messages, least recently written first
    this.clientIds = new Map() // `${room}\0${sender}\0${clientId}` -> ack
    this.sorted = [] // room names in order, for list(); kept in order as rooms come and go
    // Seqs never repeat under one `id`: a room forgotten (over maxRooms)
    // and written again numbers on from the highest seq ever forgotten, so
    // a client holding `since` from before sees a gap, never old seqs reused.
    this.floor = 0
  }

  room(name) {
    let r = this.rooms.get(name)
    if (r) {
      this.rooms.delete(name) // move to most recent
    } else {
      r = { seq: this.floor, messages: [], head: 0, bytes: 0 }
      if (this.rooms.size >= this.maxRooms) this.forget(this.rooms.keys().next().value)
      this.sorted.splice(this.position(name), 0, name)
    }
    this.rooms.set(name, r)
    return r
  }

  forget(name) {
    const r = this.rooms.get(name)
    this.floor = Math.max(this.floor, r.seq)
    this.bytes -= r.bytes
    this.rooms.delete(name)
    this.holding.delete(name)
    const at = this.position(name)
    if (this.sorted[at] === name) this.sorted.splice(at, 1)
  }

  /**
   * Rooms by name after `after`, at most `limit`: `{ name, lastSeq }`. The
   * names are kept in order as rooms come and go, so a page costs a binary
   * search, never a sort of every room.
   */
  list(after, limit) {
    const names = this.sorted
    let lo = this.position(after)
    if (names[lo] === after) lo++
    return names.slice(lo, lo + limit).map((name) => ({ name, lastSeq: this.latestSeq(name) }))
  }

  /** Where `name` is or would go in `sorted` (binary search). */
  position(name) {
    let lo = 0
    let hi = this.sorted.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (this.sorted[mid] < name) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** Drops the oldest kept message of `r`. */
  dropOldest(name, r) {
    const m = r.messages[r.head]
    r.messages[r.head++] = undefined
    const size = sizeOf(m)
    r.bytes -= size
    this.bytes -= size
    if (r.head === r.messages.length) {
      r.messages = []
      r.head = 0
      this.holding.delete(name)
    } else if (r.head >= this.slack) {
      r.messages.splice(0, r.head)
      r.head = 0
    }
  }

  /** The first ack of a resend, if this (room, sender, clientId) was seen. */
  duplicate(room, sender, clientId) {
    return clientId === null ? undefined : this.clientIds.get(`${room}\0${sender}\0${clientId}`)
  }

  /** Numbers and keeps `message` (without seq); returns it with its seq. */
  append(message, clientId) {
    const name = message.room
    const r = this.room(name)
    // One literal shape for every kept message (a spread's copy was slower
    // to build, to size and for socket.io to walk when it is broadcast).
    const stored = {
      id: message.id,
      room: message.room,
      sender: message.sender,
      ts: message.ts,
      keyId: message.keyId,
      epoch: message.epoch,
      message: message.message,
      seq: ++r.seq,
    }
    const size = sizeOf(stored)
    r.messages.push(stored)
    r.bytes += size
    this.bytes += size
    this.holding.delete(name)
    this.holding.set(name, r)
    // The newest message of a room is always kept, whatever its size.
    while (r.messages.length - r.head > 1 && (r.messages.length - r.head > this.perRoom || r.bytes > this.roomBytes)) {
      this.dropOldest(name, r)
    }
    while (this.bytes > this.totalBytes) {
      const [oldest, o] = this.holding.entries().next().value
      if (oldest === name && r.messages.length - r.head === 1) break
      this.dropOldest(oldest, o)
    }
    if (clientId !== null) {
      const key = `${message.room}\0${message.sender}\0${clientId}`
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
    for (let i = r.head; i < kept.length; i++) {
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
    return r && limit > 0 ? r.messages.slice(Math.max(r.head, r.messages.length - limit)) : []
  }
}

module.exports = { History, sizeOf }
