// Rendering one room's messages and its outbox as plain DOM.

const pad = (n) => String(n).padStart(2, '0')

/** HH:MM today, otherwise the date too; the full time in the tooltip. */
export function timeElement(ts) {
  const t = document.createElement('time')
  const d = new Date(ts)
  t.dateTime = d.toISOString()
  t.title = d.toLocaleString()
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`
  t.textContent = d.toDateString() === new Date().toDateString() ? hm : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hm}`
  return t
}

/** One stored message: time, sender, (you), text — or why it did not open. */
export function messageItem(m) {
  const li = document.createElement('li')
  li.dataset.seq = String(m.seq)
  li.dataset.id = m.id
  if (m.own) li.classList.add('own')
  const who = document.createElement('span')
  who.className = 'sender'
  who.textContent = m.sender
  // Guests may come marked `~name` (the hardening branch): styled apart, so
  // a guest cannot pass for the account of that name.
  if (m.sender.startsWith('~')) {
    who.classList.add('guest')
    who.title = 'guest (no account)'
  }
  const body = document.createElement('span')
  if (m.error) {
    body.className = 'unreadable'
    body.textContent = `(could not be opened: ${m.error.code})`
  } else {
    body.className = 'text'
    body.textContent = m.text
  }
  li.append(timeElement(m.ts), who)
  if (m.own) {
    const you = document.createElement('span')
    you.className = 'you'
    you.textContent = '(you)'
    li.append(you)
  }
  li.append(body)
  return li
}

/** A message not stored yet: pending, or failed with its code and Retry / Discard. */
export function outboxItem(e, { online, onRetry, onDiscard }) {
  const li = document.createElement('li')
  li.dataset.clientId = e.clientId
  li.dataset.state = e.state
  const state = document.createElement('span')
  state.className = 'state'
  const trying = online ? 'sending…' : 'waiting…'
  state.textContent = e.state === 'failed' ? `not sent (${e.error ? e.error.code : 'error'})` : e.error ? `${trying} (${e.error.code})` : trying
  const text = document.createElement('span')
  text.className = 'text'
  text.textContent = e.text
  const head = document.createElement('div')
  head.className = 'head'
  head.append(state)
  li.append(head, text)
  if (e.state === 'failed') {
    const retry = document.createElement('button')
    retry.type = 'button'
    retry.className = 'retry'
    retry.textContent = 'Retry'
    retry.addEventListener('click', () => onRetry(e.clientId))
    const discard = document.createElement('button')
    discard.type = 'button'
    discard.className = 'discard'
    discard.textContent = 'Discard'
    discard.addEventListener('click', () => onDiscard(e.clientId))
    head.append(retry, discard)
  }
  return li
}
