// The language-neutral conformance cases (tests/conformance/**/*.json), run through the Node binding with the
// same ops and expectations as crates/polyroute-core/tests/conformance.rs.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join, dirname, basename } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Router, validateRequest } from 'polyroute'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

function files(dir) {
  return readdirSync(dir).sort().flatMap((name) => {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) return files(p)
    return name.endsWith('.json') ? [p] : []
  })
}

const routers = new Map()
function router(name) {
  if (!routers.has(name)) {
    // The engine plans with the router's credentials unless a case lists some (as in Python): give every provider
    // of the catalog a credential (no key needed) so the router's own filter keeps them all.
    const options = { readEnv: false }
    if (name !== 'embedded') {
      options.catalog = join(root, 'tests', 'fixtures', name)
      const doc = JSON.parse(readFileSync(options.catalog, 'utf8'))
      options.providers = Object.fromEntries((doc.providers ?? []).map((p) => [p.slug, { noAuth: true }]))
    }
    routers.set(name, new Router(options))
  }
  return routers.get(name)
}

/** A decimal string without insignificant zeros, so `0.0025000` equals `0.0025`. */
function decimal(s) {
  let [int, frac = ''] = String(s).replace(/^\+/, '').split('.')
  const neg = int.startsWith('-')
  int = int.replace(/^-/, '').replace(/^0+(?=\d)/, '')
  frac = frac.replace(/0+$/, '')
  const out = frac ? `${int}.${frac}` : int
  return neg && out !== '0' ? `-${out}` : out
}

function checkError(err, expect) {
  assert.equal(err.name, 'PolyrouteError', `not a PolyrouteError: ${err}`)
  assert.equal(err.code, expect.error, `expected ${expect.error}, got ${err.code} (${err.message})`)
  if (expect.error_field !== undefined) assert.equal(err.body.error.metadata.field, expect.error_field)
  if (expect.message_contains !== undefined) assert.ok(err.message.includes(expect.message_contains), `message ${JSON.stringify(err.message)} lacks ${expect.message_contains}`)
  if (expect.excluded_by !== undefined) {
    const got = err.body.error.availability?.excluded_by ?? []
    for (const r of expect.excluded_by) assert.ok(got.includes(r), `excluded_by ${JSON.stringify(got)} lacks ${r}`)
  }
  if (expect.status !== undefined) assert.equal(err.status, expect.status)
}

function outcome(fn) {
  try {
    return { value: fn() }
  } catch (error) {
    return { error }
  }
}

function runPlan(r, input, expect) {
  const context = {}
  if (input.seed !== undefined) context.seed = input.seed
  if (input.health !== undefined) context.health = input.health
  if (input.credentials !== undefined) context.credentials = input.credentials
  if (input.sticky !== undefined) context.sticky = input.sticky
  if (input.previous_model !== undefined) context.previousModel = input.previous_model
  const { value: p, error } = outcome(() => r.plan(input.request, context))
  if (expect.error !== undefined) {
    assert.ok(error, `expected error ${expect.error}, got a plan ${JSON.stringify(p?.attempts)}`)
    return checkError(error, expect)
  }
  if (error) throw error
  const tags = p.attempts.map((a) => a.endpoint)
  const full = p.attempts.map((a) => `${a.model}@${a.endpoint}`)
  const matches = (w, i) => (w.includes('@') ? full[i] === w : tags[i] === w)
  if (expect.attempts) assert.ok(expect.attempts.length === tags.length && expect.attempts.every(matches), `attempts ${full} != ${expect.attempts}`)
  if (expect.attempts_prefix) assert.ok(expect.attempts_prefix.every(matches), `attempts ${full} do not start with ${expect.attempts_prefix}`)
  for (const w of expect.attempts_include ?? []) assert.ok(tags.includes(w) || full.includes(w), `attempts ${full} lack ${w}`)
  if (expect.first_in) assert.ok(expect.first_in.some((w) => matches(w, 0)), `first attempt ${full[0]} not in ${expect.first_in}`)
  if (expect.models) assert.deepEqual(p.models.map((m) => m.id), expect.models)
  for (const [tag, reason] of Object.entries(expect.excluded ?? {})) {
    const hit = p.excluded.find((e) => e.endpoint === tag || `${e.model}@${e.endpoint}` === tag)
    assert.equal(hit?.reason, reason, `exclusion of ${tag}: ${JSON.stringify(hit)}, want ${reason}`)
  }
  for (const key of ['strategy', 'fallback_costs_more']) {
    if (expect[key] !== undefined) assert.deepEqual(p[key], expect[key])
  }
  if (expect.task_type !== undefined) assert.deepEqual(p.router?.task_type, expect.task_type)
}

function runCost(r, input, expect) {
  const context = { finishReason: input.finish_reason ?? 'stop' }
  if (input.utc_minute !== undefined) context.utcMinute = input.utc_minute
  const { value: b, error } = outcome(() => r.cost(input.model, input.usage, input.provider ?? null, context))
  if (expect.error !== undefined) {
    assert.ok(error, 'expected an error')
    return checkError(error, expect)
  }
  if (error) throw error
  for (const [k, want] of Object.entries(expect)) {
    const got = b[k]
    if (typeof want === 'string' && typeof got === 'string') assert.equal(decimal(got), decimal(want), `cost ${k} = ${got}, want ${want}`)
    else assert.deepEqual(got, want, `cost ${k}`)
  }
}

function runRequest(input, expect) {
  const { error } = outcome(() => validateRequest(input.request))
  if (expect.ok === true) {
    if (error) throw error
    return
  }
  assert.ok(error, 'expected an error, request was accepted')
  checkError(error, expect)
}

const dir = join(root, 'tests', 'conformance')
let count = 0
for (const path of files(dir)) {
  const cases = JSON.parse(readFileSync(path, 'utf8'))
  for (const c of cases) {
    count += 1
    test(`${basename(path)}::${c.name}`, () => {
      const r = router(c.catalog ?? 'basic.json')
      switch (c.op) {
        case 'plan': return runPlan(r, c.input, c.expect)
        case 'cost': return runCost(r, c.input, c.expect)
        case 'request': return runRequest(c.input, c.expect)
        default: assert.fail(`unknown op ${c.op}`)
      }
    })
  }
}

test('conformance cases were found', () => {
  assert.ok(count > 50, `only ${count} cases`)
})
