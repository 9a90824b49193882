'use strict'
// Who is online in a room (docs/protocol.md, `presence`): the list in a
// join ack, and `presence { room, name, online }` events. As on the Rust
// server it is derived, never counted: once a second each room with
// sockets is compared with what it was last told, so every way a socket
// leaves a room shows, at most a second later. Rooms with more than
// MAX_ROOM sockets have none (`presence: null`).

const MAX_ROOM = 200
const TICK_MS = 1000

/** The sender names of the sockets in `room`, or null when too many. */
function online(io, room) {
  const ids = io.sockets.adapter.rooms.get(room)
  if (!ids) return []
  if (ids.size > MAX_ROOM) return null
  const names = new Set()
  for (const id of ids) {
    const socket = io.sockets.sockets.get(id)
    if (socket) names.add(socket.data.name)
  }
  return [...names].sort()
}

/** Starts the comparison; returns its timer (unref'd). */
function watch(io) {
  const shown = new Map() // room -> names | null
  const timer = setInterval(() => {
    const adapter = io.sockets.adapter
    for (const room of shown.keys()) if (!adapter.rooms.has(room)) shown.delete(room)
    for (const room of adapter.rooms.keys()) {
      if (adapter.sids.has(room)) continue // each socket's own room
      const now = online(io, room)
      // A room seen for the first time was told nobody yet.
      const before = shown.has(room) ? shown.get(room) : []
      shown.set(room, now)
      if (!now || !before) continue
      const was = new Set(before)
      const is = new Set(now)
      for (const name of now) if (!was.has(name)) io.to(room).emit('presence', { room, name, online: true })
      for (const name of before) if (!is.has(name)) io.to(room).emit('presence', { room, name, online: false })
    }
  }, TICK_MS)
  timer.unref()
  return timer
}

module.exports = { online, watch, MAX_ROOM }
