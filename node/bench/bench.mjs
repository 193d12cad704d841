// Benchmarks of the Node binding (a program, not a test). Loopback only; every process started here is stopped by
// its PID before exit.
//
//   node bench/bench.mjs [--n 2000] [--plan-n 20000] [--portkey-dir DIR]
//
// 1. router.plan through Node: median and p90 per call (fixture catalog, and a many-endpoint model of the
//    embedded catalog).
// 2. router.chat against the loopback mock, next to the same request sent straight to the mock from Node
//    (node:http, keep-alive): the difference of medians is polyroute's added overhead.
// 3. With --portkey-dir (a directory where @portkey-ai/gateway is installed): the same request through the
//    Portkey gateway bound to 127.0.0.1, its added overhead, and the ratio of the two overheads.
import http from 'node:http'
import net from 'node:net'
import { spawn } from 'node:child_process'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Router } from 'polyroute'
import { startMock, fixture, FAKE_KEY } from '../support/mock.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : dflt
}
const N = Number(arg('n', 2000))
const PLAN_N = Number(arg('plan-n', 20000))
const PORTKEY_DIR = arg('portkey-dir', null)

const children = []
function stopAll() {
  for (const c of children) c.stop()
}
process.on('exit', stopAll)
process.on('SIGINT', () => process.exit(130))

function stats(samples) {
  const v = Float64Array.from(samples).sort()
  const q = (p) => v[Math.min(v.length - 1, Math.round((v.length - 1) * p))]
  return { n: v.length, median: q(0.5), p90: q(0.9), p99: q(0.99) }
}
const us = (x) => `${x.toFixed(2)} µs`
const line = (label, s) => console.log(`${label.padEnd(46)} median ${us(s.median).padStart(11)}  p90 ${us(s.p90).padStart(11)}  p99 ${us(s.p99).padStart(11)}  (n=${s.n})`)

function timeSync(fn, n) {
  for (let i = 0; i < Math.min(n, 2000); i++) fn()
  const out = new Array(n)
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint()
    fn()
    out[i] = Number(process.hrtime.bigint() - t) / 1000
  }
  return stats(out)
}

async function timeAsync(fn, n) {
  const out = new Array(n)
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint()
    await fn()
    out[i] = Number(process.hrtime.bigint() - t) / 1000
  }
  return out
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
function post(url, body, headers) {
  const payload = JSON.stringify(body)
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers } }, (res) => {
      const parts = []
      res.on('data', (d) => parts.push(d))
      res.on('end', () => {
        const text = Buffer.concat(parts).toString()
        if (res.statusCode !== 200) reject(new Error(`${url}: ${res.statusCode} ${text.slice(0, 300)}`))
        else resolve(JSON.parse(text))
      })
    })
    req.on('error', reject)
    req.end(payload)
  })
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

async function startPortkey(dir) {
  const port = await freePort()
  const entry = join(dir, 'node_modules', '@portkey-ai', 'gateway', 'build', 'start-server.js')
  const child = spawn(process.execPath, ['--import', join(here, 'bind-loopback.mjs'), entry, `--port=${port}`, '--headless'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, NODE_ENV: 'production', TRUSTED_CUSTOM_HOSTS: '127.0.0.1,localhost' },
  })
  const handle = { url: `http://127.0.0.1:${port}`, pid: child.pid, stop: () => { if (child.exitCode === null && !child.killed) child.kill('SIGTERM') } }
  children.push(handle)
  for (let i = 0; i < 100; i++) {
    try {
      await new Promise((resolve, reject) => net.connect(port, '127.0.0.1').once('connect', function () { this.end(); resolve() }).once('error', reject))
      return handle
    } catch {
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  throw new Error('Portkey gateway did not start')
}

async function main() {
  console.log(`node ${process.version}, ${process.platform}-${process.arch}`)

  const mock = await startMock(['--keep-requests', '0'])
  children.push(mock)
  console.log(`mock at ${mock.url} (pid ${mock.pid})`)
  const router = new Router(fixture(mock.url))
  const messages = [{ role: 'user', content: 'Say hello to the benchmark.' }]
  const req = { model: 'test/chat', messages, max_tokens: 64, provider: { order: ['alpha'] } }

  console.log('\n== router.plan through Node')
  const planFixture = timeSync(() => router.plan(req, {}), PLAN_N)
  line('plan, fixture model (2 endpoints), core inputs', planFixture)
  line('plan, fixture model, router credentials+health', timeSync(() => router.plan(req), PLAN_N))
  const embedded = new Router({ readEnv: false })
  const big = embedded.models().filter((m) => (m.endpoints ?? []).length > 0).sort((a, b) => b.endpoints.length - a.endpoints.length)[0]
  if (big) {
    const bigReq = { model: big.id, messages, max_tokens: 64 }
    line(`plan, ${big.id} (${big.endpoints.length} endpoints)`, timeSync(() => embedded.plan(bigReq, {}), PLAN_N))
  }

  console.log('\n== router.chat added overhead (sequential, loopback mock)')
  const direct = { model: 'alpha-upstream-model', messages, max_tokens: 64 }
  const directUrl = `${mock.url}/v1/chat/completions`
  const auth = { authorization: `Bearer ${FAKE_KEY}` }
  const runs = {
    direct: () => post(directUrl, direct, auth),
    polyroute: () => router.chat(req),
  }
  let portkey
  if (PORTKEY_DIR) {
    portkey = await startPortkey(PORTKEY_DIR)
    console.log(`Portkey gateway at ${portkey.url} (pid ${portkey.pid})`)
    const pkHeaders = { ...auth, 'x-portkey-provider': 'openai', 'x-portkey-custom-host': `${mock.url}/v1` }
    runs.portkey = () => post(`${portkey.url}/v1/chat/completions`, direct, pkHeaders)
  }
  for (const f of Object.values(runs)) await timeAsync(f, 300)
  const samples = Object.fromEntries(Object.keys(runs).map((k) => [k, []]))
  const rounds = 10
  for (let r = 0; r < rounds; r++) {
    for (const [k, f] of Object.entries(runs)) samples[k].push(...(await timeAsync(f, Math.ceil(N / rounds))))
  }
  const s = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, stats(v)]))
  line('direct to mock (node:http keep-alive)', s.direct)
  line('router.chat (polyroute in-process)', s.polyroute)
  const overhead = s.polyroute.median - s.direct.median
  console.log(`polyroute added overhead (median − median): ${us(overhead)}`)
  const result = { plan_median_us: planFixture.median, chat_overhead_us: overhead, direct_median_us: s.direct.median, polyroute_median_us: s.polyroute.median }
  if (s.portkey) {
    line('Portkey gateway (HTTP, 127.0.0.1)', s.portkey)
    const pk = s.portkey.median - s.direct.median
    console.log(`Portkey added overhead (median − median):   ${us(pk)}`)
    console.log(`ratio Portkey overhead / polyroute overhead:  ${(pk / overhead).toFixed(1)}×`)
    Object.assign(result, { portkey_median_us: s.portkey.median, portkey_overhead_us: pk, ratio: pk / overhead })
  }
  console.log(JSON.stringify(result))
}

try {
  await main()
} finally {
  stopAll()
  agent.destroy()
}
