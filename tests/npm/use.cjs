// `require('chatseal')` from a project that installed the packed package.
const assert = require('node:assert')
const { Keyring, Sealer } = require('chatseal')
const sealer = new Sealer(Keyring.generate())
assert.strictEqual(sealer.decrypt(sealer.encrypt('hello', 'r'), 'r'), 'hello')
console.log('require: ok')
