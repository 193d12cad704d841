// One Node process of the fleet test: an in-process polyroute Router with `state` (the shared Redis and
// PostgreSQL), behind a small HTTP front so the driver can reach it. POST /chat {request, user, session} answers
// the completion (200) or the error's status with {code, message}. Prints `listening on PORT`.
//
//   node node_router.js PACKAGE_DIR CONFIG_JSON    (the RouterConfig as JSON, camelCase keys)
'use strict'
const http = require('node:http')
const { Router } = require(process.argv[2])

const router = new Router(JSON.parse(process.argv[3]))
const server = http.createServer((req, res) => {
  const parts = []
  req.on('data', (c) => parts.push(c))
  req.on('end', async () => {
    let status = 200
    let payload
    try {
      const body = JSON.parse(Buffer.concat(parts).toString())
      payload = await router.chat(body.request, { user: body.user ?? undefined, sessionId: body.session ?? undefined })
    } catch (e) {
      status = typeof e.status === 'number' ? e.status : 500
      payload = { code: e.code, message: String(e.message) }
    }
    const data = Buffer.from(JSON.stringify(payload))
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': data.length })
    res.end(data)
  })
})
server.listen(0, '127.0.0.1', () => {
  console.log(`listening on ${server.address().port}`)
})
