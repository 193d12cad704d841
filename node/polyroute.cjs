'use strict'
// The package entry for `require('polyroute')`: the generated native binding (index.js) plus `router.plan` (over
// `planJson`) and `router.fetch`, the in-process OpenAI-compatible HTTP surface for the `openai` SDK (fetch.cjs).

const native = require('./index.js')
const { createFetch } = require('./fetch.cjs')

const fetchers = new WeakMap()

/** `fn` that never throws into the addon: a throw or a rejected promise becomes a process warning. */
function safe(fn, name) {
  if (fn === undefined || fn === null) return undefined
  if (typeof fn !== 'function') throw new TypeError(`hooks.${name} must be a function`)
  const warn = (e) => process.emitWarning(`polyroute hooks.${name} failed: ${e && e.stack ? e.stack : e}`)
  return (event) => {
    try {
      const r = fn(event)
      if (r && typeof r.then === 'function') r.then(undefined, warn)
    } catch (e) {
      warn(e)
    }
  }
}

/** The native router, with `options.hooks` ({ onAttempt, onGeneration }) taken out and made safe. */
class Router extends native.Router {
  constructor(options) {
    if (options && typeof options === 'object' && options.hooks != null) {
      const { hooks, ...rest } = options
      super(rest, { onAttempt: safe(hooks.onAttempt, 'onAttempt'), onGeneration: safe(hooks.onGeneration, 'onGeneration') })
    } else {
      super(options)
    }
  }
}

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

/** The ordered attempt plan (see `planJson`): the request and the plan cross the boundary as JSON text. */
Object.defineProperty(native.Router.prototype, 'plan', {
  configurable: true,
  enumerable: false,
  writable: true,
  value: function plan(request, context) {
    return JSON.parse(this.planJson(JSON.stringify(request ?? null), context))
  },
})

/** Whether `e` is an error thrown by polyroute (it carries the core's stable `code`). */
function isPolyrouteError(e) {
  return e instanceof Error && e.name === 'PolyrouteError' && typeof e.code === 'string'
}

module.exports = {
  Router,
  ChatStream: native.ChatStream,
  ErrorCode: native.ErrorCode,
  allCodes: native.allCodes,
  validateRequest: native.validateRequest,
  isPolyrouteError,
}
