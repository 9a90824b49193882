// The chatseal browser client: sign in (account or guest), rooms, live
// messages opened in the browser with the room keys from `join`, history on
// join, and catch-up with `since` after a reconnect. The server never sends
// plaintext; this page decrypts with WebCrypto.
import { io } from 'socket.io-client'
import { RoomKeys } from './envelope.js'

const $ = (id) => document.getElementById(id)
const keys = new RoomKeys()
const rooms = new Map() // room -> { lastSeq, messages: Map<seq, {sender, text}> }
let socket = null
let current = 'lobby'

function setStatus(online) {
  $('status').textContent = online ? 'online' : 'offline'
  $('status').dataset.state = online ? 'online' : 'offline'
}

async function api(path, body) {
  const res = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const json = await res.json().catch(() => ({}))
  if (!res.ok) throw new Error(json.error ? `${json.error.code}: ${json.error.message}` : `HTTP ${res.status}`)
  return json
}

function start(auth) {
  socket = io({ auth, transports: ['websocket'] })
  socket.on('connect', async () => {
    setStatus(true)
    $('signin').hidden = true
    $('chat').hidden = false
    // First connect: the lobby. Reconnect: every room, from where we were.
    const names = rooms.size ? [...rooms.keys()] : ['lobby']
    for (const room of names) await join(room)
  })
  socket.on('disconnect', () => setStatus(false))
  socket.on('connect_error', (err) => {
    $('signin-error').textContent = err.message
    if (!socket.active) socket = null
  })
  socket.on('chat message', (msg) => receive(msg))
  socket.on('room key', async ({ room, key }) => keys.add(room, [key]))
}

async function join(room) {
  const state = rooms.get(room)
  const ack = await socket.timeout(10000).emitWithAck('join', state ? { room, since: state.lastSeq } : { room })
  if (!ack.ok) {
    $('chat-error').textContent = `${ack.error.code}: ${ack.error.message}`
    return
  }
  await keys.add(room, ack.keys)
  if (!rooms.has(room)) rooms.set(room, { lastSeq: 0, messages: new Map() })
  for (const msg of ack.missed) await receive(msg)
  renderRooms()
  if (!state) show(room)
}

async function receive(msg) {
  const state = rooms.get(msg.room)
  if (!state || state.messages.has(msg.seq)) return // not ours, or seen (live and catch-up overlap)
  let text
  try {
    text = await keys.open(msg)
  } catch {
    text = null
  }
  state.messages.set(msg.seq, { sender: msg.sender, text })
  state.lastSeq = Math.max(state.lastSeq, msg.seq)
  if (msg.room === current) renderMessages()
}

function renderRooms() {
  const list = $('rooms')
  list.replaceChildren()
  for (const room of rooms.keys()) {
    const li = document.createElement('li')
    li.textContent = room
    li.setAttribute('aria-current', String(room === current))
    li.addEventListener('click', () => show(room))
    list.append(li)
  }
}

function renderMessages() {
  const list = $('messages')
  const state = rooms.get(current)
  list.replaceChildren()
  for (const seq of [...state.messages.keys()].sort((a, b) => a - b)) {
    const { sender, text } = state.messages.get(seq)
    const li = document.createElement('li')
    const who = document.createElement('span')
    who.className = 'sender'
    who.textContent = sender
    const body = document.createElement('span')
    if (text === null) {
      body.className = 'unreadable'
      body.textContent = '(could not be opened)'
    } else {
      body.textContent = text
    }
    li.append(who, body)
    list.append(li)
  }
  list.scrollTop = list.scrollHeight
}

function show(room) {
  current = room
  $('room-title').textContent = room
  renderRooms()
  renderMessages()
}

// A message is sent with a clientId and resent until acked: a resend after a
// reconnect is deduplicated by the server, so it is never stored twice.
async function send(text) {
  const payload = { message: text, room: current, clientId: crypto.randomUUID() }
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const ack = await socket.timeout(5000).emitWithAck('chat message', payload)
      if (ack.ok) return
      $('chat-error').textContent = `${ack.error.code}: ${ack.error.message}`
      if (ack.error.code !== 'UNAVAILABLE') return
    } catch {
      // no ack in time: resend the same clientId
    }
    await new Promise((r) => setTimeout(r, 500 * (attempt + 1)))
  }
  $('chat-error').textContent = 'not sent: the server did not answer'
}

$('guest-form').addEventListener('submit', (e) => {
  e.preventDefault()
  $('signin-error').textContent = ''
  start({ name: $('guest-name').value })
})

$('account-form').addEventListener('submit', async (e) => {
  e.preventDefault()
  $('signin-error').textContent = ''
  const username = $('username').value
  const password = $('password').value
  try {
    if (e.submitter?.value === 'register') await api('/api/register', { username, password })
    const { token } = await api('/api/login', { username, password })
    start({ token })
  } catch (err) {
    $('signin-error').textContent = err.message
  }
})

$('join-form').addEventListener('submit', async (e) => {
  e.preventDefault()
  const room = $('room-name').value
  $('room-name').value = ''
  $('chat-error').textContent = ''
  await join(room)
  show(rooms.has(room) ? room : current)
})

$('send-form').addEventListener('submit', (e) => {
  e.preventDefault()
  const text = $('message').value
  $('message').value = ''
  $('chat-error').textContent = ''
  send(text)
})
