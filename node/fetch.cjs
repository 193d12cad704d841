'use strict'
// `router.fetch`: a WHATWG fetch that answers the OpenAI-compatible API from a Router in-process, so the official
// `openai` SDK works with `fetch: router.fetch` and no server. Each request goes to the native `router.http`, the
// engine's OpenRouter HTTP surface that the gateway and the Python transports answer with too: the same paths
// (chat completions, streamed or not; models, models/count, models/{author}/{slug}, model/{author}/{slug},
// models/{..}/endpoints, providers, generation?id=, credits; any base path), headers (HTTP-Referer,
// X-OpenRouter-Title / X-Title, x-session-id, X-OpenRouter-Metadata) and errors (status and OpenRouter envelope,
// so the SDK raises its APIError classes). Streams come back as a ReadableStream of SSE bytes; aborting the
// request or cancelling the stream cancels the upstream request.

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
  const headers = [...new Headers(init.headers ?? (isRequest ? input.headers : undefined))]
  return { target: url.pathname + url.search, method, text, headers, signal: init.signal ?? (isRequest ? input.signal : undefined) }
}

function streamBody(answer, signal) {
  const it = answer[Symbol.asyncIterator]()
  const stop = () => { it.return().catch(() => {}) }
  if (signal) signal.addEventListener('abort', stop, { once: true })
  return new ReadableStream({
    async pull(controller) {
      const r = await it.next()
      if (r.done) controller.close()
      else controller.enqueue(new Uint8Array(r.value))
    },
    cancel: stop,
  })
}

/** A fetch function bound to `router`. */
function createFetch(router) {
  return async function fetch(input, init = {}) {
    const { target, method, text, headers, signal } = await readRequest(input, init)
    const answer = await router.http(method, target, headers, text ?? null)
    const body = answer.body
    return new Response(body ?? streamBody(answer, signal), { status: answer.status, headers: answer.headers })
  }
}

module.exports = { createFetch }
