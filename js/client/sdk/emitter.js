'use strict'
// A small event emitter that runs in browsers and Node alike (node:events
// is not in browsers). A listener that throws does not stop the others: the
// error is rethrown on its own tick, where it shows as an uncaught error.

class Emitter {
  constructor() {
    this._listeners = new Map()
  }

  /** Adds a listener; returns a function that removes it. */
  on(event, fn) {
    if (typeof fn !== 'function') throw new TypeError('listener must be a function')
    if (!this._listeners.has(event)) this._listeners.set(event, new Set())
    this._listeners.get(event).add(fn)
    return () => this.off(event, fn)
  }

  off(event, fn) {
    this._listeners.get(event)?.delete(fn)
  }

  once(event, fn) {
    const off = this.on(event, (...args) => {
      off()
      fn(...args)
    })
    return off
  }

  emit(event, ...args) {
    for (const fn of [...(this._listeners.get(event) || [])]) {
      try {
        fn(...args)
      } catch (err) {
        setTimeout(() => {
          throw err
        })
      }
    }
  }
}

module.exports = { Emitter }
