'use strict'
// The `chatseal` package: the generated loader (index.js) finds the native
// addon; this file only turns napi-rs's argument-conversion failures into
// the `TypeError`s a Node.js API throws for wrong argument types.
//
// Engine failures keep their stable `code` (`BAD_TAG`, `UNKNOWN_KEY`, …, see
// `errorCodes()`); a wrong argument type becomes a TypeError with
// `code === 'ERR_INVALID_ARG_TYPE'`, as in Node's own APIs.

const native = require('./index.js')

// The napi statuses that mean "this JavaScript value has the wrong type".
const TYPE_STATUSES = new Set([
  'InvalidArg',
  'ObjectExpected',
  'StringExpected',
  'NameExpected',
  'FunctionExpected',
  'NumberExpected',
  'BooleanExpected',
  'ArrayExpected',
  'BigintExpected',
  'DateExpected',
  'ArrayBufferExpected',
  'DetachableArraybufferExpected',
])

function asTypeError(err) {
  if (err === null || typeof err !== 'object' || !TYPE_STATUSES.has(err.code)) return err
  const typeError = new TypeError(err.message)
  typeError.code = 'ERR_INVALID_ARG_TYPE'
  return typeError
}

function typed(fn) {
  return function (...args) {
    try {
      return fn.apply(this, args)
    } catch (err) {
      throw asTypeError(err)
    }
  }
}

// Prototype methods are wrapped in place, once at load, so instances stay
// the native classes' own. The native statics cannot be redefined, so each
// class is exported as a facade function that shares the native prototype
// (`instanceof` holds for every instance, however it was made) and carries
// wrapped statics.
function wrapPrototype(proto) {
  for (const name of Object.getOwnPropertyNames(proto)) {
    const desc = Object.getOwnPropertyDescriptor(proto, name)
    if (name !== 'constructor' && typeof desc.value === 'function') {
      Object.defineProperty(proto, name, { ...desc, value: typed(desc.value) })
    }
  }
}

function facade(NativeClass, construct) {
  wrapPrototype(NativeClass.prototype)
  const Facade = {
    [NativeClass.name]: function (...args) {
      if (!new.target) throw new TypeError(`Class constructor ${NativeClass.name} cannot be invoked without 'new'`)
      return construct(...args)
    },
  }[NativeClass.name]
  Facade.prototype = NativeClass.prototype
  for (const name of Object.getOwnPropertyNames(NativeClass)) {
    const value = NativeClass[name]
    if (typeof value === 'function' && name !== 'prototype') Facade[name] = typed(value.bind(NativeClass))
  }
  return Facade
}

function invalidArg(message) {
  const err = new TypeError(message)
  err.code = 'ERR_INVALID_ARG_TYPE'
  return err
}

const Keyring = facade(native.Keyring, () => {
  throw invalidArg('make a Keyring with Keyring.generate(), fromJson(), fromFile(), fromEnv() or loadOrGenerate()')
})

// `new Sealer(notAKeyring)` would fail inside the native constructor with a
// plain Error, so the argument is checked here.
const Sealer = facade(native.Sealer, (keyring) => {
  if (!(keyring instanceof Keyring)) throw invalidArg('Sealer needs a Keyring')
  return new native.Sealer(keyring)
})

exports.Keyring = Keyring
exports.Sealer = Sealer
exports.chatContext = typed(native.chatContext)
exports.validateChatRoom = typed(native.validateChatRoom)
exports.errorCodes = native.errorCodes
exports.version = native.version
