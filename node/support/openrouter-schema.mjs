// Validators for what polyroute emits, built on the OpenRouter TypeScript SDK's own zod schemas (`@openrouter/sdk`):
// answers (ChatResult), chunks (ChatStreamChunk), error bodies (the per-status error data). The SDK parses every
// response and stream chunk with these schemas, so a failure here is a failure of `@openrouter/sdk` clients.
import assert from 'node:assert/strict'
import * as M from '@openrouter/sdk/models'

const ERRORS = {
  400: M.BadRequestResponseErrorData$inboundSchema,
  401: M.UnauthorizedResponseErrorData$inboundSchema,
  402: M.PaymentRequiredResponseErrorData$inboundSchema,
  403: M.ForbiddenResponseErrorData$inboundSchema,
  404: M.NotFoundResponseErrorData$inboundSchema,
  408: M.RequestTimeoutResponseErrorData$inboundSchema,
  413: M.PayloadTooLargeResponseErrorData$inboundSchema,
  422: M.UnprocessableEntityResponseErrorData$inboundSchema,
  429: M.TooManyRequestsResponseErrorData$inboundSchema,
  500: M.InternalServerResponseErrorData$inboundSchema,
  502: M.BadGatewayResponseErrorData$inboundSchema,
  503: M.ServiceUnavailableResponseErrorData$inboundSchema,
  524: M.EdgeNetworkTimeoutResponseErrorData$inboundSchema,
  529: M.ProviderOverloadedResponseErrorData$inboundSchema,
}

function parse(schema, value, what) {
  const r = schema.safeParse(value)
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')
    assert.fail(`${what} does not match @openrouter/sdk: ${issues}\n${JSON.stringify(value)}`)
  }
  return r.data
}

function usage(u) {
  parse(M.ChatUsage$inboundSchema, u, 'usage')
  assert.equal(typeof u.cost, 'number')
  const d = u.cost_details
  const parts = d.upstream_inference_prompt_cost + d.upstream_inference_completions_cost + (d.server_tool_cost ?? 0)
  assert.ok(Math.abs(parts - u.cost) < 1e-9, JSON.stringify(u))
}

export function answer(v) {
  const r = parse(M.ChatResult$inboundSchema, v, 'answer')
  assert.ok('system_fingerprint' in v, 'system_fingerprint is required (null allowed)')
  usage(v.usage)
  return r
}

export function chunk(v) {
  const r = parse(M.ChatStreamChunk$inboundSchema, v, 'chunk')
  if (v.usage) usage(v.usage)
  return r
}

/** Every chunk valid; exactly one usage chunk (`choices: []`), last. */
export function stream(chunks) {
  assert.ok(chunks.length > 0, 'empty stream')
  chunks.forEach(chunk)
  const withUsage = chunks.flatMap((c, i) => (c.usage ? [i] : []))
  assert.deepEqual(withUsage, [chunks.length - 1])
  assert.deepEqual(chunks.at(-1).choices, [])
}

export function error(status, body) {
  assert.ok(ERRORS[status], `no OpenRouter error schema for status ${status}`)
  parse(ERRORS[status], body.error, `error ${status}`)
  assert.equal(body.error.code, status)
  const md = body.error.metadata
  if (md && 'provider_code' in md) assert.equal(typeof md.provider_code, 'string', JSON.stringify(md))
}
