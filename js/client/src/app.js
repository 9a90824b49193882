// The chatseal browser client, on the SDK (chatseal/client): sign in as a
// guest or an account, rooms, messages opened in the page with WebCrypto,
// older history on scrolling up, and sends that survive outages, reloads
// and an expired session. The server never sends plaintext.
import { connect } from '../index.js'
import * as session from './session.js'
import { api } from './api.js'
import { messageItem, outboxItem } from './view.js'

const $ = (id) => document.getElementById(id)
const scroller = $('scroller')
const PAGE = 50
/** Pixels from the bottom that still count as "at the bottom". */
const NEAR = 60

let chat = null
let me = null
let current = null
let unseen = 0
/** room → { messages: Map<seq, message>, oldest, atStart, loading } */
const rooms = new Map()

// ---- session ----

function start(s) {
  me = s
  session.save(me)
  const name = me.kind === 'account' ? me.username : me.name
  document.body.classList.add('signed-in')
  $('signin').hidden = true
  $('chat').hidden = false
  $('logout').hidden = false
  $('me').hidden = false
  $('me').textContent = name
  $('status').hidden = false
  $('create-form').hidden = me.kind !== 'account'
  chat = connect({
    url: location.origin,
    ...(me.kind === 'account' ? { token: me.token } : { name: me.name }),
    pending: me.pending,
  })
  chat.on('status', showStatus)
  chat.on('message', onMessage)
  chat.on('outbox', onOutbox)
  chat.on('refused', (e) => signOut(`${e.code}: ${e.message}`))
  chat.on('room error', (e) => {
    chatError(`${e.code}: ${e.message} (${e.room})`)
    dropRoom(e.room)
  })
  chat.on('presence', (e) => e.room === current && renderOnline())
  chat.on('typing', onTyping)
  chat.on('gap', (e) => chatNote(`messages ${e.from}–${e.to} of ${e.room} are no longer held by the server`))
  chat.on('reset', (e) => {
    rooms.set(e.room, newRoom())
    if (e.room === current) renderMessages()
  })
  showStatus(chat.status)
  const wanted = me.rooms.length ? me.rooms : ['lobby']
  for (const room of wanted) joinRoom(room, false)
  show(me.current && wanted.includes(me.current) ? me.current : wanted[0])
  renderOutbox()
  loadPublicRooms()
}

function persist() {
  if (!me) return
  me.rooms = [...rooms.keys()]
  me.current = current
  me.pending = chat ? chat.pending().map(({ clientId, room, text }) => ({ clientId, room, text })) : []
  session.save(me)
}

/** Back to the sign-in forms; `error` says why (a refused name, …). */
function signOut(error = '') {
  chat?.close()
  chat = null
  me = null
  current = null
  rooms.clear()
  session.clear()
  document.body.classList.remove('signed-in', 'nav-open')
  $('signin').hidden = false
  $('chat').hidden = true
  $('logout').hidden = true
  $('me').hidden = true
  $('banner').hidden = true
  $('status').hidden = true
  $('status').textContent = 'offline'
  $('status').dataset.state = 'offline'
  $('messages').replaceChildren()
  $('outbox').replaceChildren()
  $('signin-error').textContent = error
}

// ---- connection state ----

/** Socket.IO's reasons, said for people. */
const REASONS = {
  'transport close': 'the connection to the server was lost',
  'transport error': 'the connection to the server failed',
  'ping timeout': 'the server stopped answering',
  'io server disconnect': 'the server closed the connection',
  'websocket error': 'the server cannot be reached',
  'xhr poll error': 'the server cannot be reached',
  'timeout': 'the server did not answer in time',
}
const human = (reason) => REASONS[reason] || reason || 'no connection'

function showStatus(s) {
  renderOutbox()
  $('status').textContent = s.state
  $('status').dataset.state = s.state
  const banner = $('banner')
  banner.dataset.state = s.state
  $('relogin-form').hidden = true
  const waiting = chat ? chat.pending().filter((p) => p.state === 'pending').length : 0
  const kept = waiting ? ` ${waiting} message${waiting > 1 ? 's' : ''} waiting will be sent then.` : ' Messages you send are kept until then.'
  if (s.state === 'online' || s.state === 'closed') {
    banner.hidden = true
    return
  }
  banner.hidden = false
  if (s.state === 'expired') {
    $('banner-text').textContent = `Your session expired (${s.reason}). Log in again to go on.${waiting ? kept : ''}`
    $('relogin-form').hidden = me?.kind !== 'account'
  } else if (s.state === 'offline') {
    $('banner-text').textContent = `Offline: ${human(s.reason)}. Reconnecting…${kept}`
  } else {
    $('banner-text').textContent = 'Connecting…'
  }
}

// ---- rooms ----

function newRoom() {
  return { messages: new Map(), oldest: null, atStart: false, loading: false }
}

async function joinRoom(room, showIt = true) {
  const fresh = !rooms.has(room)
  if (fresh) rooms.set(room, newRoom())
  if (showIt) show(room)
  renderRooms()
  try {
    await chat.join(room)
    persist()
    if (room === current) {
      fill()
      renderOnline()
    }
  } catch (err) {
    if (!fresh) return
    chatError(`${err.code || 'ERROR'}: ${err.reason || err.message}`)
    await chat?.leave(room).catch(() => {})
    dropRoom(room)
  }
}

function dropRoom(room) {
  rooms.delete(room)
  if (current === room) show(rooms.keys().next().value ?? null)
  renderRooms()
  persist()
}

function renderRooms() {
  const list = $('rooms')
  list.replaceChildren()
  for (const room of rooms.keys()) {
    const li = document.createElement('li')
    li.textContent = room
    li.title = room
    li.setAttribute('aria-current', String(room === current))
    li.addEventListener('click', () => show(room))
    list.append(li)
  }
}

/** Public rooms from GET /api/rooms, where the server has the route; nothing otherwise. */
async function loadPublicRooms() {
  let body
  try {
    body = await api('GET', '/api/rooms', { token: me?.kind === 'account' ? me.token : undefined })
  } catch {
    $('public').hidden = true
    return
  }
  const items = Array.isArray(body) ? body : Array.isArray(body?.rooms) ? body.rooms : []
  const names = items.map((r) => (typeof r === 'string' ? r : r && !r.private ? r.name : null)).filter((n) => typeof n === 'string')
  const list = $('public-rooms')
  list.replaceChildren()
  for (const name of names) {
    const li = document.createElement('li')
    li.textContent = name
    li.title = `join ${name}`
    li.addEventListener('click', () => joinRoom(name))
    list.append(li)
  }
  $('public').hidden = names.length === 0
}

// ---- who is online, who is typing ----

/** room -> Map(name -> timer that ends their "typing") */
const typists = new Map()
/** A typing signal lapses without a repeat within this (senders repeat every 3 s). */
const TYPING_LAPSE_MS = 5000
let lastTypingSent = 0

function renderOnline() {
  const names = current ? chat?.online(current) : null
  $('online').textContent = names ? `online: ${names.map(shownName).join(', ')}` : ''
}

function renderTyping() {
  const names = [...(typists.get(current)?.keys() ?? [])]
  $('typing').textContent = names.length ? `${names.map(shownName).join(', ')} ${names.length === 1 ? 'is' : 'are'} typing…` : ''
}

function shownName(name) {
  return name === me?.name || name === `~${me?.name}` ? `${name} (you)` : name
}

function onTyping(e) {
  const room = typists.get(e.room) ?? new Map()
  typists.set(e.room, room)
  clearTimeout(room.get(e.name))
  if (e.typing) {
    room.set(
      e.name,
      setTimeout(() => {
        room.delete(e.name)
        if (e.room === current) renderTyping()
      }, TYPING_LAPSE_MS),
    )
  } else {
    room.delete(e.name)
  }
  if (e.room === current) renderTyping()
}

function show(room) {
  current = room
  unseen = 0
  $('jump').hidden = true
  $('room-title').textContent = room ?? ''
  $('invite-form').hidden = !room || me?.kind !== 'account' || room === 'lobby'
  document.body.classList.remove('nav-open')
  $('menu').setAttribute('aria-expanded', 'false')
  renderRooms()
  renderMessages()
  renderOutbox()
  renderOnline()
  renderTyping()
  persist()
}

// ---- messages ----

function atBottom() {
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < NEAR
}

function toBottom() {
  scroller.scrollTop = scroller.scrollHeight
  unseen = 0
  $('jump').hidden = true
}

function renderMessages() {
  const list = $('messages')
  list.replaceChildren()
  const state = rooms.get(current)
  if (!state) return
  for (const seq of [...state.messages.keys()].sort((a, b) => a - b)) list.append(messageItem(state.messages.get(seq)))
  olderNote()
  toBottom()
  fill()
}

function onMessage(m) {
  const state = rooms.get(m.room)
  if (!state || state.messages.has(m.seq)) return
  state.messages.set(m.seq, m)
  if (state.oldest === null || m.seq < state.oldest) state.oldest = m.seq
  if (m.seq === 1) state.atStart = true
  if (m.room !== current) return
  const stay = atBottom()
  const list = $('messages')
  const item = messageItem(m)
  const last = list.lastElementChild
  if (!last || Number(last.dataset.seq) < m.seq) list.append(item)
  else list.insertBefore(item, [...list.children].find((li) => Number(li.dataset.seq) > m.seq))
  if (stay || m.own) toBottom()
  else {
    unseen++
    $('jump').textContent = `${unseen} new message${unseen > 1 ? 's' : ''} ↓`
    $('jump').hidden = false
  }
}

function olderNote() {
  const state = rooms.get(current)
  $('older').textContent = !state ? '' : state.atStart ? `The beginning of ${current}.` : state.loading ? 'Loading older messages…' : ''
}

/** Older messages when scrolled to the top, keeping what is on screen in place. */
async function loadOlder() {
  const room = current
  const state = rooms.get(room)
  if (!state || state.loading || state.atStart || state.oldest === null) return
  if (state.oldest <= 1) {
    state.atStart = true
    olderNote()
    return
  }
  state.loading = true
  olderNote()
  try {
    const older = await chat.history(room, { before: state.oldest, limit: PAGE })
    if (room !== current) return
    const height = scroller.scrollHeight
    const top = scroller.scrollTop
    const frag = document.createDocumentFragment()
    for (const m of older) {
      if (state.messages.has(m.seq)) continue
      state.messages.set(m.seq, m)
      frag.append(messageItem(m))
    }
    if (older.length) state.oldest = Math.min(state.oldest, older[0].seq)
    if (!older.length || state.oldest <= 1) state.atStart = true
    $('messages').prepend(frag)
    scroller.scrollTop = top + (scroller.scrollHeight - height)
  } catch (err) {
    $('older').textContent = `Older messages could not be read (${err.code || err.message}).`
    state.loading = false
    return
  } finally {
    state.loading = false
  }
  olderNote()
  fill()
}

/** Loads older pages until the view can scroll (or the room starts). */
function fill() {
  const state = rooms.get(current)
  if (state && !state.atStart && state.oldest !== null && scroller.scrollHeight <= scroller.clientHeight + 5) loadOlder()
}

let lastTop = 0
scroller.addEventListener('scroll', () => {
  // Only a scroll up near the top reads older pages (not a list still filling).
  if (scroller.scrollTop < NEAR && scroller.scrollTop < lastTop) loadOlder()
  lastTop = scroller.scrollTop
  if (atBottom()) {
    unseen = 0
    $('jump').hidden = true
  }
})
$('jump').addEventListener('click', toBottom)

// ---- sending ----

function onOutbox(e) {
  if (e.state === 'sent' && e.ack) {
    document.querySelector(`#messages li[data-id="${CSS.escape(e.ack.id)}"]`)?.classList.add('own')
  }
  persist()
  if (chat) showStatus(chat.status)
}

function renderOutbox() {
  const list = $('outbox')
  list.replaceChildren()
  if (!chat) return
  const stay = atBottom()
  for (const e of chat.pending()) {
    if (e.room !== current) continue
    list.append(
      outboxItem(e, {
        online: chat.status.state === 'online',
        onRetry: (id) => chat.retry(id).catch(() => {}),
        onDiscard: (id) => chat.discard(id),
      }),
    )
  }
  if (stay) toBottom()
}

function chatError(text) {
  $('chat-error').dataset.kind = 'error'
  $('chat-error').textContent = text
}

function chatNote(text) {
  $('chat-error').dataset.kind = 'note'
  $('chat-error').textContent = text
}

// ---- forms ----

$('guest-form').addEventListener('submit', (e) => {
  e.preventDefault()
  $('signin-error').textContent = ''
  start({ kind: 'guest', name: $('guest-name').value, rooms: [], current: null, pending: [] })
})

$('account-form').addEventListener('submit', async (e) => {
  e.preventDefault()
  $('signin-error').textContent = ''
  const username = $('username').value
  const password = $('password').value
  try {
    if (e.submitter?.value === 'register') await api('POST', '/api/register', { body: { username, password } })
    const { token } = await api('POST', '/api/login', { body: { username, password } })
    $('password').value = ''
    start({ kind: 'account', username, token, rooms: [], current: null, pending: [] })
  } catch (err) {
    $('signin-error').textContent = err.message
  }
})

// An expired session: log in again; what waits is sent once the new token is in.
$('relogin-form').addEventListener('submit', async (e) => {
  e.preventDefault()
  const password = $('relogin-password').value
  try {
    const { token } = await api('POST', '/api/login', { body: { username: me.username, password } })
    $('relogin-password').value = ''
    me.token = token
    persist()
    chat.setToken(token)
  } catch (err) {
    $('banner-text').textContent = `Could not log in again: ${err.message}`
  }
})

$('logout').addEventListener('click', () => signOut())

$('menu').addEventListener('click', () => {
  const open = document.body.classList.toggle('nav-open')
  $('menu').setAttribute('aria-expanded', String(open))
})

$('join-form').addEventListener('submit', (e) => {
  e.preventDefault()
  const room = $('room-name').value
  $('room-name').value = ''
  $('chat-error').textContent = ''
  if (rooms.has(room)) show(room)
  else joinRoom(room)
})

$('create-form').addEventListener('submit', async (e) => {
  e.preventDefault()
  const name = $('new-room').value
  $('chat-error').textContent = ''
  try {
    await api('POST', '/api/rooms', { body: { name, private: true }, token: me.token })
    $('new-room').value = ''
    await joinRoom(name)
  } catch (err) {
    chatError(err.message)
  }
})

$('invite-form').addEventListener('submit', async (e) => {
  e.preventDefault()
  const username = $('invite-name').value
  $('chat-error').textContent = ''
  try {
    await api('POST', `/api/rooms/${encodeURIComponent(current)}/members`, { body: { username }, token: me.token })
    $('invite-name').value = ''
    chatNote(`${username} can now join ${current}.`)
  } catch (err) {
    chatError(err.message)
  }
})

// Typing: at most one signal every 3 s while keys are pressed; a stop when sent.
$('message').addEventListener('input', () => {
  if (!current || !chat || !$('message').value || Date.now() - lastTypingSent < 3000) return
  lastTypingSent = Date.now()
  chat.typing(current).catch(() => {})
})

$('send-form').addEventListener('submit', (e) => {
  e.preventDefault()
  const text = $('message').value
  if (!text || !current) return
  $('message').value = ''
  if (lastTypingSent) {
    lastTypingSent = 0
    chat.typing(current, false).catch(() => {})
  }
  $('chat-error').textContent = ''
  // Pending, sent or failed: the outbox shows it; the promise is not needed here.
  chat.send(current, text).catch(() => {})
  toBottom()
})

// A session kept from before the reload.
const kept = session.load()
if (kept) start(kept)
