// `import` of the packed package (named exports of a CommonJS module).
import assert from 'node:assert'
import { Keyring, Sealer, version } from 'chatseal'
const sealer = new Sealer(Keyring.generate())
assert.strictEqual(sealer.decrypt(sealer.encrypt('hello', 'r'), 'r'), 'hello')
assert.match(version(), /^\d+\.\d+\.\d+/)
console.log('import: ok')
