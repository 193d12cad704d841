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

// `router.plan`: the addon numbers each endpoint route and each distinct plan head (the plan without its
// attempts, with the attempts' reasons) once per router, and writes a plan as numbers into a Uint32Array kept
// per router: `[head, (route, reason, model index) × attempts]` (see bindings/node/src/plan.rs). Each route and
// each head becomes a function that returns fresh objects from constants, fetched as JSON the first time its
// number is seen, so a plan costs no JSON parse at all: one call per attempt and one for the head. The values
// and key order are those of `planJson`. A plan whose head the addon does not number comes as the compact JSON
// text `{p, r, a: [route, reason, model index, …], t: [route, route JSON, …]}` instead.
const planState = new WeakMap()

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)

/**
 * A function returning a fresh copy of `tpl` (a parsed JSON object) with `extra` (parameter names) appended as
 * keys, or null when code generation is disallowed or a key is `__proto__`. The copy is one object literal whose
 * leaves are closure constants: every call makes fresh objects (nested ones too) through V8's fast literal path,
 * with the keys in the template's order.
 */
function literalFactory(tpl, extra) {
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
  if (!ok) return null
  try {
    const consts = leaves.map((_, i) => `c${i}=v[${i}]`).join(',')
    const keys = extra.join(',')
    const all = body && keys ? `${body},${keys}` : body || keys
    // eslint-disable-next-line no-new-func
    const make = new Function('v', `${consts ? `const ${consts};` : ''}return function make(${keys}){return {${all}}}`)
    return make(leaves)
  } catch {
    // Code generation disallowed (--disallow-code-generation-from-strings).
    return null
  }
}

/** A function `(reason, modelIndex) => attempt` for the route whose JSON is `text`. */
function routeFactory(text) {
  const tpl = JSON.parse(text)
  if (isObject(tpl) && !('reason' in tpl) && !('model_index' in tpl)) {
    const make = literalFactory(tpl, ['reason', 'model_index'])
    if (make !== null) return make
  }
  return (reason, modelIndex) => Object.assign(JSON.parse(text), { reason, model_index: modelIndex })
}

/** `{ make: () => plan head (fresh, "attempts": []), reasons }` for the head whose JSON is `text`. */
function headFactory(text) {
  const o = JSON.parse(text)
  const make = isObject(o.p) ? literalFactory(o.p, []) : null
  return { make: make ?? (() => JSON.parse(text).p), reasons: o.r }
}

/** The plan from the compact JSON text. */
function fromCompact(router, routes, text) {
  const o = JSON.parse(text)
  const t = o.t
  for (let i = 0; i < t.length; i += 2) routes[t[i]] = routeFactory(t[i + 1])
  const a = o.a
  const r = o.r
  const attempts = []
  for (let i = 0; i < a.length; i += 3) attempts.push(routeOf(router, routes, a[i])(r[a[i + 1]], a[i + 2]))
  o.p.attempts = attempts
  return o.p
}

/** The factory of route `id`, fetched from the addon the first time. */
function routeOf(router, routes, id) {
  let f = routes[id]
  if (f === undefined) {
    const text = router.planRoute(id)
    if (text === null) throw new Error(`polyroute: unknown endpoint route ${id}`)
    f = routes[id] = routeFactory(text)
  }
  return f
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool'])
const OBJECT = Object.prototype
const ARRAY = Array.prototype

/** Whether JSON.stringify writes `o` as a plain object: its prototype is Object's, and no `toJSON` applies. */
const plainObject = (o) => o !== null && typeof o === 'object' && Object.getPrototypeOf(o) === OBJECT && !('toJSON' in o)

/**
 * The request as `planParts` takes it, `[model, [role, content, …], max_tokens or null]`, when its JSON text
 * (`JSON.stringify`) would hold exactly those: a plain object of `model` (a string), `messages` (a plain array of
 * plain objects of a known `role` and a string `content`) and optionally `max_tokens` (a safe non-negative
 * integer; `undefined` is left out, as JSON.stringify leaves it out), every string well formed (JSON.stringify
 * escapes a lone surrogate, which the JSON reader rejects). Otherwise null: the request then crosses as its JSON
 * text. (A getter on such an object runs once either way, twice only when the request then falls back.)
 */
function requestParts(req) {
  if (!plainObject(req)) return null
  let model
  let messages
  let maxTokens = null
  for (const k in req) {
    const v = req[k]
    if (k === 'model') {
      if (typeof v !== 'string' || !v.isWellFormed()) return null
      model = v
    } else if (k === 'messages') {
      if (!Array.isArray(v) || Object.getPrototypeOf(v) !== ARRAY || 'toJSON' in v) return null
      messages = []
      for (let i = 0; i < v.length; i++) {
        const m = v[i]
        if (!plainObject(m)) return null
        let role
        let content
        for (const mk in m) {
          const x = m[mk]
          if (mk === 'role' && ROLES.has(x)) role = x
          else if (mk === 'content' && typeof x === 'string' && x.isWellFormed()) content = x
          else return null
        }
        if (role === undefined || content === undefined) return null
        messages.push(role, content)
      }
    } else if (k === 'max_tokens') {
      if (v === undefined) continue
      if (!Number.isSafeInteger(v) || v < 0) return null
      maxTokens = v
    } else {
      return null
    }
  }
  if (model === undefined || messages === undefined) return null
  return [model, messages, maxTokens]
}

/** The ordered attempt plan: the request crosses the boundary as its strings (`requestParts`) or as JSON text,
 * the plan as described above. */
Object.defineProperty(native.Router.prototype, 'plan', {
  configurable: true,
  enumerable: false,
  writable: true,
  value: function plan(request, context) {
    let st = planState.get(this)
    if (st === undefined) {
      st = { routes: [], heads: [], buf: new Uint32Array(64) }
      planState.set(this, st)
    }
    const parts = requestParts(request)
    let text = parts === null ? JSON.stringify(request ?? null) : null
    let n = parts === null
      ? this.planInto(text, context, st.buf)
      : this.planParts(parts[0], parts[1], parts[2], context, st.buf)
    if (typeof n === 'number' && n > st.buf.length) {
      st.buf = new Uint32Array(n + 64)
      if (text === null) text = JSON.stringify(request)
      n = this.planInto(text, context, st.buf)
      // Still no room (the plan grew between the calls): the compact text.
      if (typeof n === 'number' && n > st.buf.length) n = this.planCompact(text, context)
    }
    if (typeof n !== 'number') return fromCompact(this, st.routes, n)
    const buf = st.buf
    const routes = st.routes
    let h = st.heads[buf[0]]
    if (h === undefined) {
      const ht = this.planHead(buf[0])
      if (ht === null) throw new Error(`polyroute: unknown plan head ${buf[0]}`)
      h = st.heads[buf[0]] = headFactory(ht)
    }
    const r = h.reasons
    const attempts = []
    for (let i = 1; i < n; i += 3) {
      const f = routes[buf[i]]
      attempts.push((f === undefined ? routeOf(this, routes, buf[i]) : f)(r[buf[i + 1]], buf[i + 2]))
    }
    const p = h.make()
    p.attempts = attempts
    return p
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
