// The HTTP parity table (tests/parity/http.json) through `router.fetch` in process: the answers equal the engine's
// (http.expected.json, written by the Rust test), as the gateway's and Python's do.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Router } from 'polyroute'
import { startMock, root } from '../support/mock.mjs'

const parity = join(root, 'tests', 'parity')
const tableText = readFileSync(join(parity, 'http.json'), 'utf8')
const expected = JSON.parse(readFileSync(join(parity, 'http.expected.json'), 'utf8'))

let mock
before(async () => {
  mock = await startMock()
})
after(() => mock?.stop())

function mask(v, keys) {
  if (Array.isArray(v)) return v.map((x) => mask(x, keys))
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, keys.includes(k) && x !== null ? '*' : mask(x, keys)]))
  }
  if (typeof v === 'string' && v.startsWith('gen-')) return 'gen-*'
  return v
}

function parse(text) {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

async function record(table, r) {
  const ct = r.headers.get('content-type')?.split(';')[0].trim() ?? null
  const text = await r.text()
  const body = ct === 'text/event-stream'
    ? text.split('\n\n').filter((ev) => ev.startsWith('data: ')).map((ev) => parse(ev.slice(6)))
    : parse(text)
  return { status: r.status, content_type: ct, generation_header: r.headers.has('x-generation-id'), body: mask(body, table.mask_keys) }
}

test('router.fetch answers the HTTP parity table', async () => {
  const table = JSON.parse(tableText)
  table.catalog = JSON.parse(JSON.stringify(table.catalog).replaceAll('{mock}', mock.url))
  const router = new Router({ ...table.router, catalog: table.catalog })
  const gens = []
  const got = []
  for (const c of table.requests) {
    let path = c.path
    gens.forEach((g, i) => {
      if (g) path = path.replace(`{gen:${i}}`, g)
    })
    const body = c.raw ?? (c.body !== undefined ? JSON.stringify(c.body) : undefined)
    const r = await router.fetch(`http://polyroute.local${path}`, { method: c.method, headers: c.headers ?? {}, body })
    gens.push(r.headers.get('x-generation-id'))
    got.push(await record(table, r))
  }
  assert.equal(got.length, expected.length)
  got.forEach((g, i) => assert.deepEqual(g, expected[i], `request ${i}: ${c(i)}`))
  function c(i) {
    return table.requests[i].name
  }
})
