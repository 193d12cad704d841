"""One Python process of the fleet test: an in-process polyroute.Router with `state` (the shared Redis and
PostgreSQL), behind a small HTTP front so the driver can reach it. POST /chat {"request", "user", "session"}
answers the completion (200) or the error's status with {"code", "message"}. Prints `listening on PORT`.

    python_router.py CONFIG_JSON    (the RouterConfig as JSON: catalog, providers, limits, state)
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import polyroute

config = json.loads(sys.argv[1])
router = polyroute.Router(**config)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        try:
            out = router.chat(body["request"], user=body.get("user"), session_id=body.get("session"))
            status, payload = 200, dict(out)
        except polyroute.PolyrouteError as e:
            status, payload = e.status, {"code": e.code, "message": str(e)}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512


server = Server(("127.0.0.1", 0), Handler)
print(f"listening on {server.server_address[1]}", flush=True)
server.serve_forever()
