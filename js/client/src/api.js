// The HTTP API of docs/protocol.md §4, same origin as the page.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(`${code}: ${message}`)
    this.status = status
    this.code = code
  }
}

export async function api(method, path, { body, token } = {}) {
  const headers = {}
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (token) headers.authorization = `Bearer ${token}`
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const json = await res.json().catch(() => null)
  if (!res.ok) {
    const e = json && json.error
    throw new ApiError(res.status, e ? e.code : `HTTP_${res.status}`, e ? e.message : res.statusText)
  }
  return json
}
