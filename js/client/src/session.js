// What survives a reload, in localStorage: who is signed in (a guest name,
// or an account's token — never a password), the rooms joined, the room
// shown, and the messages not yet stored (sent again with their clientIds,
// so a reload cannot store one twice). Logout forgets all of it.
const KEY = 'chatseal.session'

function read(key) {
  try {
    return JSON.parse(localStorage.getItem(key) || 'null')
  } catch {
    return null
  }
}

function write(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value))
  } catch {
    // storage full or disabled: the session just does not survive a reload
  }
}

/** `{ kind: 'guest', name } | { kind: 'account', username, token }`, rooms, current, pending. */
export function load() {
  const s = read(KEY)
  if (!s || (s.kind !== 'guest' && s.kind !== 'account')) return null
  return { rooms: [], current: null, pending: [], ...s }
}

export function save(session) {
  write(KEY, session)
}

export function clear() {
  localStorage.removeItem(KEY)
}
