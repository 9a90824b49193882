'use strict'
// Node's WebCrypto, for Node 18 where it is not global by default. Browser
// bundles replace this file with nothing (package.json "browser" field).
module.exports = require('node:crypto').webcrypto
