// Compiled by scripts/test.d/25-npm-package.sh with `tsc --strict` and no
// other flags, in a scratch project that installed the packed package: the
// published index.d.ts must need nothing the user did not install.
import { Keyring, Sealer, chatContext, type RoomKey } from 'chatseal'

const sealer = new Sealer(Keyring.generate())
const envelope: string = sealer.encrypt('hi', 'lobby', chatContext('lobby', 'id', 'ann'))
const bytes: Buffer = sealer.decryptBuffer(sealer.encryptBuffer(new Uint8Array([1]), 'r'), 'r')
const keys: RoomKey[] = sealer.roomKeys('lobby')
const later: Promise<string> = sealer.decryptAsync(envelope, 'lobby')
export { bytes, keys, later }
