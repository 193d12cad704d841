#!/usr/bin/env python3
"""A loopback Google OAuth token endpoint and Vertex AI mock for polyroute's tests (127.0.0.1 only).

POST /token takes the JWT-bearer grant and verifies the assertion independently of polyroute: the RS256 signature
with the service account's public key (the `cryptography` package), then the claims (iss, aud = this endpoint,
the cloud-platform scope, iat/exp around now). It issues `ya29.fake-<n>` tokens that live --lifetime seconds.
POST …/publishers/google/models/<m>:generateContent answers a Gemini response when the bearer token is one it
issued and has not expired (else 401 UNAUTHENTICATED), and only under --project and --location.
GET /_log lists tokens issued and the token each Vertex call carried.

Usage: vertex_mock.py --public-key pub.pem --email sa@x.iam.gserviceaccount.com --project p --location l
"""
import argparse
import base64
import json
import re
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

ARGS = None
PUBLIC_KEY = None
ISSUED = {}  # token -> expiry (epoch seconds)
LOG = {"issued": [], "calls": [], "refused": []}
LOCK = threading.Lock()


def b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with LOCK:
            self.send_json(200, LOG)

    def token(self, body):
        form = urllib.parse.parse_qs(body.decode())
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return self.send_json(400, {"error": "unsupported_grant_type"})
        jwt = (form.get("assertion") or [""])[0]
        parts = jwt.split(".")
        if len(parts) != 3:
            return self.send_json(400, {"error": "invalid_grant", "error_description": "malformed assertion"})
        header = json.loads(b64url(parts[0]))
        claims = json.loads(b64url(parts[1]))
        try:
            PUBLIC_KEY.verify(b64url(parts[2]), f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(),
                              hashes.SHA256())
        except Exception:
            with LOCK:
                LOG["refused"].append("signature")
            return self.send_json(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        now = time.time()
        me = f"http://{self.headers.get('Host')}/token"
        problems = []
        if header.get("alg") != "RS256":
            problems.append("alg")
        if claims.get("iss") != ARGS.email:
            problems.append("iss")
        if claims.get("aud") != me:
            problems.append("aud")
        if "https://www.googleapis.com/auth/cloud-platform" not in claims.get("scope", "").split():
            problems.append("scope")
        if not (claims.get("iat", 0) <= now + 60 and claims.get("exp", 0) > now
                and claims.get("exp", 0) - claims.get("iat", 0) <= 3600):
            problems.append("iat/exp")
        if problems:
            with LOCK:
                LOG["refused"].append(",".join(problems))
            return self.send_json(400, {"error": "invalid_grant", "error_description": "bad claims: " + ",".join(problems)})
        with LOCK:
            tok = f"ya29.fake-{len(LOG['issued']) + 1}"
            ISSUED[tok] = now + ARGS.lifetime
            LOG["issued"].append(tok)
        self.send_json(200, {"access_token": tok, "expires_in": ARGS.lifetime, "token_type": "Bearer"})

    def do_POST(self):
        n = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(n)
        if self.path == "/token":
            return self.token(body)
        m = re.match(r"^/v1/projects/([^/]+)/locations/([^/]+)/publishers/google/models/([^/:]+):generateContent$",
                     self.path)
        auth = self.headers.get("Authorization", "")
        tok = auth[7:] if auth.startswith("Bearer ") else ""
        with LOCK:
            valid = tok in ISSUED and ISSUED[tok] > time.time()
            LOG["calls"].append({"path": self.path, "token": tok, "valid": valid})
        if not valid:
            return self.send_json(401, {"error": {"code": 401, "status": "UNAUTHENTICATED",
                                                  "message": "Request had invalid authentication credentials."}})
        if not m or m.group(1) != ARGS.project or m.group(2) != ARGS.location:
            return self.send_json(404, {"error": {"code": 404, "status": "NOT_FOUND", "message": "no such model"}})
        req = json.loads(body or b"{}")
        text = "".join(p.get("text", "") for p in req["contents"][-1]["parts"])
        self.send_json(200, {"candidates": [{"content": {"role": "model", "parts": [{"text": f"echo: {text}"}]},
                                             "finishReason": "STOP"}],
                             "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2,
                                               "totalTokenCount": 7}})


def main():
    global ARGS, PUBLIC_KEY
    ap = argparse.ArgumentParser()
    ap.add_argument("--public-key", required=True)
    ap.add_argument("--email", required=True)
    ap.add_argument("--project", required=True)
    ap.add_argument("--location", required=True)
    ap.add_argument("--lifetime", type=int, default=4)
    ARGS = ap.parse_args()
    with open(ARGS.public_key, "rb") as f:
        PUBLIC_KEY = serialization.load_pem_public_key(f.read())
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"listening on 127.0.0.1:{srv.server_address[1]}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
