// Compiled with `tsc --noEmit --strict` (npm run typecheck): the generated
// index.d.ts must describe the API as the tests use it. It is never run.
import { Keyring, Sealer, chatContext, errorCodes, version, type RoomKey, type OpenOutcome } from 'chatseal'

const keyring: Keyring = Keyring.generate()
const sealer = new Sealer(keyring)
const envelope: string = sealer.encrypt('hi', 'lobby', chatContext('lobby', 'id', 'ann'))
const text: string = sealer.decrypt(envelope, 'lobby', Buffer.from('ctx'))
const bytes: Buffer = sealer.decryptBuffer(sealer.encryptBuffer(new Uint8Array([1]), 'r'), 'r')
const keys: RoomKey[] = sealer.roomKeys('lobby')
const outcomes: OpenOutcome[] = sealer.decryptBatch([{ envelope, room: 'lobby' }])
const first: string | undefined = outcomes[0].message
const later: Promise<string> = sealer.decryptAsync(envelope, 'lobby')
const many: Promise<string[]> = sealer.encryptBatchAsync([{ plaintext: 'a', room: 'r' }])
const id: number = sealer.rotate() + keyring.primary + keyring.minDecrypt
const codes: string[] = errorCodes()
const v: string = version()
const maybe: Keyring | null = Keyring.fromEnv('CHATSEAL_KEYRING')
export { text, bytes, keys, first, later, many, id, codes, v, maybe }
