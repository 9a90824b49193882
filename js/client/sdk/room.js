'use strict'
// One joined room: shows every stored message once, in seq order.
//
// `lastSeq` is the last seq shown. Everything that changes it (join acks,
// live messages, new keys) runs through one promise chain per room, so
// opening an envelope (async WebCrypto) never lets a later message overtake
// an earlier one. A live message past `lastSeq + 1` waits in `buffer` while a
// catch-up (`join { since: lastSeq }`, paged until `latestSeq`) fills the gap.
//
// Keys: a room key is per (master key id, key epoch), and every join ack
// hands all of the room's (every epoch). A live message naming a key this
// client lacks (a `room key` event it overtook, or an epoch started since
// the last join) is not shown as unreadable at once: it waits in `buffer`
// and a catch-up joins again, which brings the keys and reads it back. Only
// a message whose key a fresh join ack did not hand is NO_KEY.
const { Unreadable, epochOf } = require('./envelope')

/** Live messages kept while a gap is filled; past this the catch-up reads them again. */
const BUFFER_MAX = 10000
/** (key id, epoch) pairs a join ack did not hand, remembered so each costs one catch-up. */
const MISSING_MAX = 1024
/** Catch-ups in a row one message may wait through for its key (a server whose acks never cover it). */
const KEY_WAITS_MAX = 3

const keySlot = (keyId, epoch) => `${epoch}/${keyId}`

class Room {
  constructor(client, name, since) {
    this.client = client
    this.name = name
    this.lastSeq = since === undefined ? null : since
    /** The `historyId` of the last join ack: seqs are only comparable within one. */
    this.historyId = null
    /** Names online (from each join ack and `presence` events); null: off or unknown. */
    this.online = null
    this.firstSeq = null
    this.buffer = new Map()
    /** keySlot()s a fresh join ack did not hand: messages under them are NO_KEY at once. */
    this.missing = new Set()
    /** `latestSeq` of the last join ack applied: its keys cover every message up to it. */
    this.keysSeq = null
    /** Catch-ups the next message has waited through for its key. */
    this.keyWaits = 0
    this.chain = Promise.resolve()
    this.catching = null
    this.again = false
    this.joinedGen = -1
    this.settled = false
    this.joined = new Promise((resolve, reject) => {
      this.resolveJoined = resolve
      this.rejectJoined = reject
    })
    // join() callers get the rejection; nobody else has to handle it.
    this.joined.catch(() => {})
  }

  /** Runs `fn` after everything queued before it; a failure does not stop the chain. */
  enqueue(fn) {
    const run = this.chain.then(fn)
    this.chain = run.catch(() => {})
    return run
  }

  /**
   * Joins on connection `gen` from `lastSeq`, reading every page of missed
   * messages. Concurrent calls on one connection share one run (and make it
   * read once more, for a gap seen meanwhile).
   */
  catchUp(gen) {
    if (this.catching && this.catching.gen === gen) {
      this.again = true
      return this.catching.promise
    }
    const promise = (async () => {
      try {
        for (let page = 0; page < 100000; page++) {
          this.again = false
          const payload = this.lastSeq === null ? { room: this.name } : { room: this.name, since: this.lastSeq }
          const ack = await this.client.joinRequest(payload, gen)
          if (gen !== this.client.generation || this.client.rooms.get(this.name) !== this) return
          // One step on the room's queue: a presence event or live message
          // queued meanwhile cannot fall between the two.
          const over = await this.enqueue(async () => {
            if (this.startOver(ack)) return true
            await this.applyJoin(ack)
            return false
          })
          if (over) continue
          this.joinedGen = gen
          if (!this.settled) {
            this.settled = true
            this.resolveJoined({ room: this.name, latestSeq: ack.latestSeq, historyId: this.historyId })
          }
          const more = ack.missed.length > 0 && this.lastSeq < ack.latestSeq
          if (!more && !this.again) return
        }
      } finally {
        if (this.catching && this.catching.promise === promise) this.catching = null
      }
    })()
    this.catching = { gen, promise }
    return promise
  }

  requestCatchUp() {
    const c = this.client
    if (this.joinedGen !== c.generation || !c.socket.connected) return // the rejoin reads it
    this.catchUp(c.generation).catch(() => {})
  }

  /**
   * True when the ack is from another history than the seqs shown so far
   * (`historyId` changed, or `latestSeq` fell below them: a Node server
   * restarted, or a database was replaced). Seqs seen say nothing about it,
   * and the ack's `missed` was read after a `since` from the old one: the
   * room starts over, joined again without `since`.
   */
  startOver(ack) {
    if (!Number.isSafeInteger(ack.latestSeq)) throw new Error('malformed join ack')
    const id = typeof ack.historyId === 'string' ? ack.historyId : null
    const changed = id !== null && this.historyId !== null && id !== this.historyId
    if (id !== null) this.historyId = id
    if (this.lastSeq === null || !(changed || ack.latestSeq < this.lastSeq)) return false
    this.client.emit('reset', { room: this.name, latestSeq: ack.latestSeq, historyId: id })
    this.lastSeq = null
    this.firstSeq = null
    this.buffer.clear()
    // The join again hands out the keys the new history needs.
    this.client.keys.forget(this.name)
    this.missing.clear()
    this.keysSeq = null
    return true
  }

  async applyJoin(ack) {
    if (!Array.isArray(ack.missed) || !Number.isSafeInteger(ack.latestSeq)) throw new Error('malformed join ack')
    // Each join's list replaces what was known: events missed while away
    // (or from before a reconnect) cannot leave a ghost. The difference is
    // reported as events, as if they had come.
    const before = this.online
    this.online = Array.isArray(ack.presence) ? new Set(ack.presence.filter((n) => typeof n === 'string')) : null
    if (before && this.online) {
      for (const name of before) if (!this.online.has(name)) this.client.emit('presence', { room: this.name, name, online: false })
      for (const name of this.online) if (!before.has(name)) this.client.emit('presence', { room: this.name, name, online: true })
    }
    await this.addKeys(ack.keys)
    this.keysSeq = ack.latestSeq
    const missed = ack.missed
    if (this.lastSeq === null) {
      // First join without since: the latest messages, then live ones.
      this.lastSeq = missed.length ? missed[0].seq - 1 : ack.latestSeq
    } else if (missed.length && missed[0].seq > this.lastSeq + 1) {
      this.gap(missed[0].seq - 1)
    } else if (!missed.length && ack.latestSeq > this.lastSeq) {
      this.gap(ack.latestSeq)
    }
    for (const msg of missed) {
      if (msg.room !== this.name || !Number.isSafeInteger(msg.seq)) continue
      // This ack's keys are the room's keys as of these messages.
      if (msg.seq === this.lastSeq + 1) await this.deliver(msg, true)
      else if (msg.seq > this.lastSeq + 1) this.buffer.set(msg.seq, msg)
    }
    await this.drain()
  }

  /** Messages the server no longer has (the Node server keeps a bounded history): reported, skipped. */
  gap(to) {
    this.client.emit('gap', { room: this.name, from: this.lastSeq + 1, to })
    this.lastSeq = to
  }

  receive(msg) {
    this.enqueue(async () => {
      if (this.lastSeq === null || msg.seq > this.lastSeq + 1) {
        if (this.buffer.size >= BUFFER_MAX) this.buffer.clear()
        this.buffer.set(msg.seq, msg)
        if (this.lastSeq !== null) this.requestCatchUp()
        return
      }
      if (msg.seq <= this.lastSeq) return // shown already: live and catch-up overlap
      if (await this.deliver(msg)) await this.drain()
    })
  }

  async drain() {
    while (this.buffer.has(this.lastSeq + 1)) {
      const next = this.buffer.get(this.lastSeq + 1)
      this.buffer.delete(next.seq)
      if (!(await this.deliver(next))) break
    }
    for (const seq of this.buffer.keys()) if (seq <= this.lastSeq) this.buffer.delete(seq)
    if (this.buffer.size) this.requestCatchUp()
  }

  /**
   * Shows `msg`, the next seq; false when it waits for its key instead (kept
   * in `buffer`, read again by a catch-up, whose join ack brings the room's
   * keys). `keysFresh`: it came in a join ack whose keys were just added.
   * A key missing although a join ack covering the message was applied is
   * missing for good: NO_KEY, and remembered for the messages after it.
   */
  async deliver(msg, keysFresh = false) {
    const opened = await this.open(msg)
    if (opened.error && opened.error.code === 'NO_KEY') {
      const slot = keySlot(msg.keyId, opened.epoch)
      const covered = keysFresh || (this.keysSeq !== null && msg.seq <= this.keysSeq) || this.keyWaits >= KEY_WAITS_MAX
      if (covered) {
        if (this.missing.size >= MISSING_MAX) this.missing.clear()
        this.missing.add(slot)
      } else if (!this.missing.has(slot)) {
        this.buffer.set(msg.seq, msg)
        this.keyWaits++
        // A catch-up running now (this may be its own ack's drain) reads once more.
        this.again = true
        this.requestCatchUp()
        return false
      }
    }
    this.keyWaits = 0
    this.lastSeq = msg.seq
    if (this.firstSeq === null || msg.seq < this.firstSeq) this.firstSeq = msg.seq
    this.client.emit('message', opened)
    return true
  }

  /** A Message with its text, or with `error` when it does not open (never dropped). */
  async open(msg) {
    const c = this.client
    const out = {
      id: msg.id,
      room: msg.room,
      seq: msg.seq,
      sender: msg.sender,
      ts: msg.ts,
      keyId: msg.keyId,
      epoch: epochOf(msg),
      own: c.isOwn(msg),
      text: null,
      error: null,
    }
    try {
      out.text = await c.keys.open(msg)
    } catch (err) {
      out.error = { code: err instanceof Unreadable ? err.code : 'BAD_ENVELOPE', message: err.message }
    }
    return out
  }

  /** A `presence` event: a name came or went (in order with join acks). */
  presence(name, online) {
    this.enqueue(() => this.applyPresence(name, online))
  }

  applyPresence(name, online) {
    if (!this.online) return
    const had = this.online.has(name)
    if (online === had) return
    if (online) this.online.add(name)
    else this.online.delete(name)
    this.client.emit('presence', { room: this.name, name, online })
  }

  addKey(key) {
    this.enqueue(() => this.addKeys([key]))
  }

  async addKeys(keys) {
    const added = await this.client.keys.add(this.name, keys)
    for (const { keyId, epoch } of added) {
      this.missing.delete(keySlot(keyId, epoch))
      this.client.emit('room key', { room: this.name, keyId, epoch })
    }
  }

  fail(err) {
    if (!this.settled) {
      this.settled = true
      this.rejectJoined(err)
    }
    this.joinedGen = -1
  }
}

module.exports = { Room }
