// Compiled with `tsc --noEmit --strict` (npm run typecheck): the generated
// index.d.ts must describe the API as the tests use it. It is never run.
import { Keyring, Sealer, chatContext, errorCodes, version, generateKek, kekId, type RoomKey, type RoomArg, type OpenOutcome, type RewrapOutcome } from 'chatseal'

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
const rewrapped: string | null = sealer.rewrap(envelope, 'lobby', 'ctx')
const rewrappedBytes: Buffer | null = sealer.rewrapBuffer(Buffer.from(envelope, 'base64'), 'lobby')
const rewrapLater: Promise<string | null> = sealer.rewrapAsync(envelope, 'lobby')
const rewraps: RewrapOutcome[] = sealer.rewrapBatch([{ envelope, room: 'lobby' }])
const resealedUnder: number | undefined = rewraps[0].unchanged ? undefined : rewraps[0].keyId
const rewrapsLater: Promise<RewrapOutcome[]> = sealer.rewrapBatchAsync([{ envelope }])
export { text, bytes, keys, first, later, many, id, codes, v, maybe }
export { rewrapped, rewrappedBytes, rewrapLater, resealedUnder, rewrapsLater }
const kek: Buffer = generateKek()
const kekName: string = kekId(kek) + kekId(kek.toString('base64'))
const wrappedText: string = keyring.wrap(kek)
const unwrapped: Keyring = Keyring.unwrap(wrappedText, kek)
const wrapLater: Promise<string> = keyring.wrapPassphraseAsync('a passphrase')
const unwrapLater: Promise<Keyring> = Keyring.unwrapPassphraseAsync(wrappedText, Buffer.from('a passphrase'))
const fromFile: Keyring = Keyring.fromWrappedFile('keyring.json', { passphrase: 'a passphrase' })
keyring.saveWrappedFile('keyring.json', kek)
export { kekName, unwrapped, wrapLater, unwrapLater, fromFile }
const atEpoch: RoomArg = { room: 'lobby', epoch: 2 }
const sealedAtEpoch: string = sealer.encrypt('hi', atEpoch, 'ctx')
const openedAtEpoch: Promise<Buffer> = sealer.decryptBufferAsync(sealedAtEpoch, { room: 'lobby', epoch: 2 }, 'ctx')
const epochKey: RoomKey = keyring.roomKey(atEpoch)
const epochOfKey: number = epochKey.epoch + sealer.roomKeys(atEpoch)[0].epoch
const epochBatch: OpenOutcome[] = sealer.decryptBatch([{ envelope: sealedAtEpoch, room: 'lobby', epoch: 2 }])
const epochSeals: string[] = sealer.encryptBatch([{ plaintext: 'a', room: 'r', epoch: 1 }])
export { openedAtEpoch, epochOfKey, epochBatch, epochSeals }
