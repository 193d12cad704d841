'use strict'
// The package entry for `require('polyroute')`: the generated native binding (index.js) plus `router.plan`,
// batched iteration of the streams, and `router.fetch`, the in-process OpenAI-compatible HTTP surface for the
// `openai` SDK (fetch.cjs).

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

// `router.plan`: the addon sends the plan without its attempts plus three numbers per attempt (endpoint route,
// reason, model index) and, the first time it names a route, the route's JSON (see bindings/node/src/plan.rs).
// Each route becomes a function that returns a fresh attempt object from constants, so a plan costs one small
// JSON.parse and one cheap call per attempt; the values and key order are those of `planJson`.
const planRoutes = new WeakMap()

/** A function `(reason, modelIndex) => attempt` for the route whose JSON is `text`. */
function routeFactory(text) {
  const tpl = JSON.parse(text)
  const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)
  if (isObject(tpl) && !('reason' in tpl) && !('model_index' in tpl)) {
    // The attempt as one object literal whose leaves are closure constants: every call makes fresh objects
    // (nested ones too) through V8's fast literal path, with the keys in the route's order.
    const leaves = []
    let ok = true
    const literal = (v) => {
      if (Array.isArray(v)) return `[${v.map(literal).join(',')}]`
      if (isObject(v)) {
        return `{${Object.keys(v)
          .map((k) => {
            if (k === '__proto__') ok = false
            return `${JSON.stringify(k)}:${literal(v[k])}`
          })
          .join(',')}}`
      }
      leaves.push(v)
      return `c${leaves.length - 1}`
    }
    const body = literal(tpl).slice(1, -1)
    if (ok) {
      try {
        const consts = leaves.map((_, i) => `c${i}=v[${i}]`).join(',')
        // eslint-disable-next-line no-new-func
        const make = new Function('v', `${consts ? `const ${consts};` : ''}return function attempt(reason,model_index){return {${body}${body ? ',' : ''}reason,model_index}}`)
        return make(leaves)
      } catch {
        // Code generation disallowed (--disallow-code-generation-from-strings): parse each time instead.
      }
    }
  }
  return (reason, modelIndex) => Object.assign(JSON.parse(text), { reason, model_index: modelIndex })
}

/** The ordered attempt plan: the request crosses the boundary as JSON text, the plan as described above. */
Object.defineProperty(native.Router.prototype, 'plan', {
  configurable: true,
  enumerable: false,
  writable: true,
  value: function plan(request, context) {
    const o = JSON.parse(this.planCompact(JSON.stringify(request ?? null), context))
    let routes = planRoutes.get(this)
    if (routes === undefined) {
      routes = []
      planRoutes.set(this, routes)
    }
    const t = o.t
    for (let i = 0; i < t.length; i += 2) routes[t[i]] = routeFactory(t[i + 1])
    const a = o.a
    const r = o.r
    const attempts = []
    for (let i = 0; i < a.length; i += 3) {
      let f = routes[a[i]]
      if (f === undefined) {
        const text = this.planRoute(a[i])
        if (text === null) throw new Error(`polyroute: unknown endpoint route ${a[i]}`)
        f = routes[a[i]] = routeFactory(text)
      }
      attempts.push(f(r[a[i + 1]], a[i + 2]))
    }
    o.p.attempts = attempts
    return o.p
  },
})

// Streams: `router.stream`, `messagesStream` and `responsesStream` return the same native objects, iterated in
// batches (every chunk already waiting crosses the boundary in one call, as one JSON array text; a call that
// finds chunks waiting answers without a promise round trip through the addon's threads). Each iteration yields
// one chunk, as the native iterator does, and `return()` cancels the upstream request.
function batchedIterator(s) {
  let buf = null
  let at = 0
  let ended = false
  let inflight = null
  const take = (text) => {
    if (text === null) {
      ended = true
      return { value: undefined, done: true }
    }
    const items = JSON.parse(text)
    if (items.length > 1) {
      buf = items
      at = 1
    }
    return { value: items[0], done: false }
  }
  const it = {
    next() {
      if (inflight !== null) return inflight.then(() => it.next(), () => it.next())
      if (buf !== null) {
        const value = buf[at]
        buf[at++] = undefined
        if (at >= buf.length) buf = null
        return Promise.resolve({ value, done: false })
      }
      if (ended) return Promise.resolve({ value: undefined, done: true })
      let text
      try {
        text = s.takeReady()
      } catch (e) {
        return Promise.reject(e)
      }
      if (text !== '') return Promise.resolve(take(text))
      const p = s.nextBatch().then(take)
      inflight = p
      const clear = () => {
        if (inflight === p) inflight = null
      }
      p.then(clear, clear)
      return p
    },
    return() {
      ended = true
      buf = null
      return s.closeBatch().then(() => ({ value: undefined, done: true }))
    },
    throw(e) {
      return Promise.reject(e)
    },
    [Symbol.asyncIterator]() {
      return this
    },
  }
  return () => it
}

for (const name of ['stream', 'messagesStream', 'responsesStream']) {
  const nativeMethod = native.Router.prototype[name]
  Object.defineProperty(native.Router.prototype, name, {
    configurable: true,
    enumerable: false,
    writable: true,
    value: {
      [name](request, options) {
        const s = nativeMethod.call(this, request, options)
        s[Symbol.asyncIterator] = batchedIterator(s)
        return s
      },
    }[name],
  })
}

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
