// chatseal/client: the client SDK for the chatseal chat protocol
// (docs/protocol.md). Hand-written; `tsc --strict` checks it (js/test).

/** Where the connection is: `online` once every joined room is joined again. */
export type ConnectionState = 'connecting' | 'online' | 'offline' | 'expired' | 'closed'

export interface Status {
  state: ConnectionState
  /** Why: a Socket.IO disconnect reason, the server's refusal, "token expired", … */
  reason: string | null
  /** The protocol code when the server gave one (UNAUTHORIZED, FORBIDDEN, UNAVAILABLE, …). */
  code: string | null
}

export interface ConnectOptions {
  /** The server's base URL, e.g. http://127.0.0.1:3000 (or a load balancer in front of a cluster). */
  url: string
  /** A session token from POST /api/login (Rust server). */
  token?: string
  /** A guest name (servers started with guests allowed). */
  name?: string
  /** Called before the token expires; its token refreshes the session in place. */
  getToken?: () => string | Promise<string>
  /** Milliseconds to wait for an ack before sending again (default 10000). */
  ackTimeout?: number
  /** At most this many unsent or failed messages (default 200); past it send() fails with QUEUE_FULL. */
  outboxLimit?: number
  /** Call getToken this long before exp (default 60000; at most half the token's life). */
  refreshBefore?: number
  /** Longest wait between reconnect attempts (default 5000). */
  reconnectionDelayMax?: number
  /** Socket.IO transports (default ['websocket']: no sticky sessions needed in a cluster). */
  transports?: Array<'websocket' | 'polling' | 'webtransport'>
  /** Sends left from an earlier session (from pending()), sent again with their clientIds. */
  pending?: ReadonlyArray<{ clientId: string; room: string; text: string }>
}

/** A stored message, opened. */
export interface ChatMessage {
  id: string
  room: string
  seq: number
  sender: string
  /** Milliseconds since the epoch, when the server accepted it. */
  ts: number
  keyId: number
  /**
   * The room's key epoch it was sealed in (0 from servers without epochs):
   * with `keyId` it names the room key that opens it. null only when the
   * server sent no valid epoch (then `error` is BAD_ENVELOPE).
   */
  epoch: number | null
  /** Sent by this client (acked to it) or under its name. */
  own: boolean
  /** The plaintext; null when the envelope did not open (see error). */
  text: string | null
  /**
   * Why it did not open: NO_KEY (no room key of its `keyId` and `epoch`,
   * even after joining the room again for the keys), BAD_ENVELOPE or
   * BAD_TAG. Never dropped silently.
   */
  error: { code: string; message: string } | null
}

export interface Ack {
  id: string
  seq: number
  ts: number
  clientId: string
}

export type OutboxState = 'pending' | 'sent' | 'failed' | 'discarded'

export interface OutboxEntry {
  clientId: string
  room: string
  text: string
  state: OutboxState
  /** The last error: for `failed` why (e.g. TOO_LARGE, FORBIDDEN, QUEUE_FULL); for `pending` a retried one. */
  error: { code: string; message: string } | null
  ack: Ack | null
  createdAt?: number
}

export interface JoinResult {
  room: string
  latestSeq: number
  /** Which history the seqs belong to (docs/protocol.md §2). */
  historyId: string | null
}

export interface ClientEvents {
  message: (message: ChatMessage) => void
  status: (status: Status) => void
  outbox: (entry: OutboxEntry) => void
  /**
   * A room key this client did not hold: from a join ack (every epoch of the
   * room's), or a `room key` event (a rotation, or a new epoch after a removal).
   */
  'room key': (event: { room: string; keyId: number; epoch: number }) => void
  /** Messages the server no longer holds (the Node server's history is bounded). */
  gap: (event: { room: string; from: number; to: number }) => void
  /**
   * The server's history is another one than the seqs shown so far belong to
   * (a Node server restarted; a database replaced): the room starts over and
   * its messages come again as new ones.
   */
  reset: (event: { room: string; latestSeq: number; historyId: string | null }) => void
  /** Someone came online in a joined room, or went (see Client.online). */
  presence: (event: { room: string; name: string; online: boolean }) => void
  /** Someone else in a joined room started or stopped typing. */
  typing: (event: { room: string; name: string; typing: boolean }) => void
  /** A joined room that could not be joined again (e.g. removed from a private room). */
  'room error': (event: { room: string; code: string; message: string }) => void
  /** The handshake was refused for good (a bad or taken name). */
  refused: (event: { code: string; message: string }) => void
  /** A token refresh: ok, or the server's code. */
  token: (event: { ok: boolean; expiresAt?: number | null; code?: string }) => void
}

export declare class ChatError extends Error {
  /** A protocol code, or one of the SDK's: TIMEOUT, OFFLINE, QUEUE_FULL, NOT_JOINED, LEFT, DISCARDED, CLOSED. */
  readonly code: string
  readonly reason: string
  /** A server's retry hint, in milliseconds, when its error carried one. */
  readonly retryAfterMs?: number
  constructor(code: string, message: string)
}

export declare class Client {
  readonly url: string
  readonly status: Status
  /** The name others see (the token's subject or the guest name); null for an anonymous guest. */
  readonly user: string | null
  on<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): () => void
  once<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): () => void
  off<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): void
  /** Joins (again after every reconnect, from the last seq shown); resolves once joined. */
  join(room: string, options?: { since?: number }): Promise<JoinResult>
  leave(room: string): Promise<void>
  /** Resolves with the ack once the message is stored; rejects with ChatError if it cannot be. */
  send(room: string, text: string): Promise<Ack>
  retry(clientId: string): Promise<Ack>
  discard(clientId: string): void
  pending(): OutboxEntry[]
  /** Tells a joined room you are typing (false: stopped); never stored, at most 2/s. */
  typing(room: string, typing?: boolean): Promise<void>
  /** Who is online in a joined room, sorted; null when presence is off for it or it is not joined yet. */
  online(room: string): string[] | null
  lastSeq(room: string): number | null
  joinedRooms(): string[]
  /** Older messages of a joined room, oldest first. */
  history(room: string, options?: { before?: number; limit?: number }): Promise<ChatMessage[]>
  /** Refreshes the session now with getToken. */
  refresh(): Promise<void>
  /** A new token after a new login: resumes an expired session with its pending messages. */
  setToken(token: string): void
  close(): void
}

export declare function connect(options: ConnectOptions): Client
