'use strict'
// chatseal/client: the client SDK (CommonJS; index.mjs is its ES module
// face, the same code). Browsers and Node 18+. See index.d.ts for the API.
module.exports = require('./sdk/client')
