'use strict'
// `router.fetch`: a WHATWG fetch that answers the OpenAI-compatible API from a Router in-process, so the official
// `openai` SDK works with `fetch: router.fetch` and no server. Routes (any base path):
//   POST …/chat/completions   JSON, or SSE bytes (`data: {chunk}\n\n` … `data: [DONE]\n\n`) when `stream: true`
//   POST …/embeddings         JSON (`router.embeddings`)
//   GET  …/models             `{object: 'list', data: [model rows]}`
//   GET  …/models/{a}/{s}     one model row (the openai SDK's models.retrieve; also OpenRouter's …/model/{a}/{s})
//   GET  …/models/count       `{data: {count}}`
//   GET  …/generation?id=…    the generation record
// The `HTTP-Referer`, `X-OpenRouter-Title` (else `X-Title`, as the gateway) and `x-session-id` headers become the
// request options.
// Failures answer with the OpenRouter error envelope and its HTTP status, so the SDK raises its APIError classes.

const encoder = new TextEncoder()
const DONE = encoder.encode('data: [DONE]\n\n')
const JSON_HEADERS = { 'content-type': 'application/json' }

function envelope(status, message, metadata) {
  return { error: { code: status, message, metadata: metadata ?? {} } }
}

function json(status, body) {
  return new Response(JSON.stringify(body), { status, headers: JSON_HEADERS })
}

function failure(e) {
  if (e && e.name === 'PolyrouteError' && e.body) return json(e.status, e.body)
  const message = e instanceof Error ? e.message : String(e)
  return json(500, envelope(500, message, { error_type: 'server', polyroute_code: 'internal' }))
}

function sse(value) {
  return encoder.encode(`data: ${JSON.stringify(value)}\n\n`)
}

async function readRequest(input, init) {
  const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url)
  const isRequest = typeof input === 'object' && input !== null && !(input instanceof URL)
  const method = (init.method ?? (isRequest ? input.method : 'GET')).toUpperCase()
  let text
  if (init.body !== undefined && init.body !== null) {
    text = await new Response(init.body).text()
  } else if (isRequest && input.body) {
    text = await input.text()
  }
  const headers = new Headers(init.headers ?? (isRequest ? input.headers : undefined))
  return { url, method, text, headers, signal: init.signal ?? (isRequest ? input.signal : undefined) }
}

function parseBody(text) {
  try {
    const body = JSON.parse(text ?? '')
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new Error('expected a JSON object')
    return body
  } catch (e) {
    throw json(400, envelope(400, `invalid request: body: ${e.message}`, { error_type: 'invalid_request', polyroute_code: 'invalid_request', field: 'body' }))
  }
}

/** Caller facts from OpenRouter's request headers. */
function requestOptions(headers) {
  const options = {}
  const referer = headers.get('http-referer')
  // The gateway's precedence: X-OpenRouter-Title, then X-Title.
  const title = headers.get('x-openrouter-title') ?? headers.get('x-title')
  const session = headers.get('x-session-id')
  if (referer) options.httpReferer = referer
  if (title) options.title = title
  if (session) options.sessionId = session
  return options
}

async function streamResponse(router, body, options, signal) {
  const it = router.stream(body, options)[Symbol.asyncIterator]()
  let first
  try {
    first = await it.next()
  } catch (e) {
    return failure(e)
  }
  const stop = () => { it.return().catch(() => {}) }
  if (signal) signal.addEventListener('abort', stop, { once: true })
  const stream = new ReadableStream({
    start(controller) {
      if (first.done) {
        controller.enqueue(DONE)
        controller.close()
      } else {
        controller.enqueue(sse(first.value))
      }
    },
    async pull(controller) {
      try {
        const r = await it.next()
        if (r.done) {
          controller.enqueue(DONE)
          controller.close()
        } else {
          controller.enqueue(sse(r.value))
        }
      } catch (e) {
        controller.enqueue(sse(e && e.body ? e.body : envelope(500, String(e))))
        controller.enqueue(DONE)
        controller.close()
      }
    },
    cancel: stop,
  })
  return new Response(stream, {
    status: 200,
    headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' },
  })
}

/** A fetch function bound to `router`. */
function createFetch(router) {
  return async function fetch(input, init = {}) {
    try {
      const { url, method, text, headers, signal } = await readRequest(input, init)
      const path = url.pathname.replace(/\/+$/, '')
      if (path.endsWith('/chat/completions')) {
        if (method !== 'POST') return json(405, envelope(405, `${method} is not allowed on ${path}`))
        const body = parseBody(text)
        const options = requestOptions(headers)
        return body.stream ? await streamResponse(router, body, options, signal) : json(200, await router.chat(body, options))
      }
      if (path.endsWith('/embeddings') && method === 'POST') {
        return json(200, await router.embeddings(parseBody(text), requestOptions(headers)))
      }
      if (path.endsWith('/embeddings/models') && method === 'GET') {
        return json(200, { object: 'list', data: router.models({ outputModality: 'embeddings' }) })
      }
      if (path.endsWith('/models') && method === 'GET') {
        return json(200, { object: 'list', data: router.models() })
      }
      if (path.endsWith('/models/count') && method === 'GET') {
        // Every output modality, as the gateway counts (the default listing leaves embedding models out).
        return json(200, { data: { count: router.models().length + router.models({ outputModality: 'embeddings' }).length } })
      }
      const one = /\/models?\/(.+)$/.exec(path) // the SDK sends the id's slash encoded (`test%2Fchat`)
      if (one && method === 'GET') {
        // `GET …/models/{author}/{slug}` (the openai SDK's models.retrieve) and OpenRouter's `…/model/{author}/{slug}`
        const id = decodeURIComponent(one[1])
        const row = router.models({ search: id }).find((m) => m.id === id)
        return row ? json(200, row) : json(404, envelope(404, `${id} is not a valid model ID`, { polyroute_code: 'model_not_found' }))
      }
      if (path.endsWith('/generation') && method === 'GET') {
        const record = await router.generation(url.searchParams.get('id') ?? '')
        return record ? json(200, { data: record }) : json(404, envelope(404, 'generation not found'))
      }
      return json(404, envelope(404, `polyroute: no route for ${method} ${path}`))
    } catch (e) {
      return e instanceof Response ? e : failure(e)
    }
  }
}

module.exports = { createFetch }
