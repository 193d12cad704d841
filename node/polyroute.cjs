'use strict'
// The package entry for `require('polyroute')`: the generated native binding (index.js) plus `router.fetch`,
// the in-process OpenAI-compatible HTTP surface for the `openai` SDK (fetch.cjs).

const native = require('./index.js')
const { createFetch } = require('./fetch.cjs')

const fetchers = new WeakMap()

Object.defineProperty(native.Router.prototype, 'fetch', {
  configurable: true,
  enumerable: false,
  /** A WHATWG fetch bound to this router (created once per router). */
  get() {
    let f = fetchers.get(this)
    if (f === undefined) {
      f = createFetch(this)
      fetchers.set(this, f)
    }
    return f
  },
})

/** Whether `e` is an error thrown by polyroute (it carries the core's stable `code`). */
function isPolyrouteError(e) {
  return e instanceof Error && e.name === 'PolyrouteError' && typeof e.code === 'string'
}

module.exports = {
  Router: native.Router,
  ChatStream: native.ChatStream,
  ErrorCode: native.ErrorCode,
  allCodes: native.allCodes,
  validateRequest: native.validateRequest,
  isPolyrouteError,
}
