'use strict'
// `router.fetch`: a WHATWG fetch that answers the OpenAI-compatible API from a Router in-process, so the official
// `openai` SDK works with `fetch: router.fetch` and no server. Each request goes to the engine's OpenRouter HTTP
// surface (the native `router.fetchCall`, the surface the gateway and the Python transports answer with too): the
// same paths (chat completions, streamed or not; models, models/count, models/{author}/{slug},
// model/{author}/{slug}, models/{..}/endpoints, providers, generation?id=, credits; any base path), headers
// (HTTP-Referer, X-OpenRouter-Title / X-Title, x-session-id, X-OpenRouter-Metadata) and errors (status and
// OpenRouter envelope, so the SDK raises its APIError classes). Streams come back as a ReadableStream of SSE bytes
// (every frame waiting is read in one call); aborting the request or cancelling the stream cancels the upstream
// request.

/** The body of a request as the addon takes it: text, bytes, or null. */
async function bodyOf(body) {
  if (body === undefined || body === null) return null
  if (typeof body === 'string') return body
  if (Buffer.isBuffer(body)) return body
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength)
  if (body instanceof ArrayBuffer) return Buffer.from(body)
  return new Response(body).text()
}

/**
 * Header pairs as one text, `name\nvalue\n…` (names lower case as `Headers` gives them; `Headers` refuses a line
 * feed in a name or a value), so one string crosses into the addon instead of an array of them.
 */
function flatHeaders(init) {
  if (init === undefined || init === null) return ''
  let out = ''
  for (const [k, v] of init instanceof Headers ? init : new Headers(init)) out += out === '' ? `${k}\n${v}` : `\n${k}\n${v}`
  return out
}

/** Target path (with its query), method, body, flat headers and signal of a fetch call. */
async function readRequest(input, init) {
  const isRequest = typeof input === 'object' && input !== null && !(input instanceof URL)
  const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url)
  const method = (init.method ?? (isRequest ? input.method : 'GET')).toUpperCase()
  let body = null
  if (init.body !== undefined && init.body !== null) body = await bodyOf(init.body)
  else if (isRequest && input.body) body = await input.text()
  const headers = flatHeaders(init.headers ?? (isRequest ? input.headers : undefined))
  return { target: url.pathname + url.search, method, body, headers, signal: init.signal ?? (isRequest ? input.signal : undefined) }
}

/** The SSE frames of a streamed answer as a byte stream; reads what is waiting without a promise when it can. */
function streamBody(answer, signal) {
  let closed = false
  const stop = () => {
    if (closed) return
    closed = true
    answer.close().catch(() => {})
  }
  if (signal) signal.addEventListener('abort', stop, { once: true })
  const deliver = (controller, buf) => {
    if (buf.length === 0) {
      closed = true
      if (signal) signal.removeEventListener('abort', stop)
      controller.close()
    } else {
      controller.enqueue(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength))
    }
  }
  return new ReadableStream({
    pull(controller) {
      const ready = answer.readReady()
      if (ready !== null) return deliver(controller, ready)
      return answer.read().then((buf) => deliver(controller, buf))
    },
    cancel: stop,
  })
}

/** A fetch function bound to `router`. */
function createFetch(router) {
  return async function fetch(input, init = {}) {
    const { target, method, body, headers, signal } = await readRequest(input, init)
    const a = await router.fetchCall(method, target, headers, body)
    const h = new Headers()
    const flat = a.headers
    for (let i = 0; i < flat.length; i += 2) h.append(flat[i], flat[i + 1])
    return new Response(a.body ?? streamBody(a.stream, signal), { status: a.status, headers: h })
  }
}

module.exports = { createFetch }
