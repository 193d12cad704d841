#!/usr/bin/env python3
"""A loopback Amazon Bedrock runtime mock for polyroute's tests (127.0.0.1 only, fake credentials).

It checks what polyroute sends with an implementation independent of polyroute's: every SigV4-signed request is
re-signed with botocore (the canonical request over the headers the Authorization header lists) and refused with
Bedrock's own error (403 InvalidSignatureException / UnrecognizedClientException) when the signatures differ, the
credential is unknown, its session token missing, the scope names another region or service, or the request date
is more than five minutes off. A Bedrock API key is accepted as a bearer token. ConverseStream answers are encoded
here in the binary event-stream framing (prelude, string headers, payload, both CRC32s) with zlib.

Models: an id containing `throttled` answers 429 ThrottlingException; any other answers with
`echo: <last user text>`. GET /_requests lists what was received (paths, auth kind, access key id, bodies).

Usage: bedrock_mock.py --region us-west-2 --cred AKID:SECRET[:TOKEN] ... [--bearer TOKEN]
Prints `listening on 127.0.0.1:PORT` once ready.
"""
import argparse
import datetime
import hmac
import json
import re
import struct
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
    r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$"
)

CREDS = {}
BEARERS = set()
REGION = "us-east-1"
REQUESTS = []
LOCK = threading.Lock()


def frame(headers, payload):
    """One event-stream message with string headers (type 7)."""
    h = b""
    for k, v in headers:
        kb, vb = k.encode(), v.encode()
        h += bytes([len(kb)]) + kb + b"\x07" + struct.pack(">H", len(vb)) + vb
    total = 12 + len(h) + len(payload) + 4
    prelude = struct.pack(">II", total, len(h))
    prelude += struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF)
    msg = prelude + h + payload
    return msg + struct.pack(">I", zlib.crc32(msg) & 0xFFFFFFFF)


def event(name, payload):
    return frame(
        [(":event-type", name), (":content-type", "application/json"), (":message-type", "event")],
        json.dumps(payload).encode(),
    )


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet; never log headers (they carry credentials)
        pass

    def send_json(self, status, obj, error_type=None):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        if error_type:
            self.send_header("x-amzn-ErrorType", error_type + ":http://internal.amazon.com/coral/com.amazon.bedrock/")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/_requests":
            with LOCK:
                self.send_json(200, REQUESTS)
        else:
            self.send_json(404, {"message": "not found"})

    def check_sigv4(self, body):
        """None when the signature verifies, else (exception name, message)."""
        m = AUTH_RE.match(self.headers.get("Authorization", ""))
        if not m:
            return "IncompleteSignatureException", "Authorization header requires a SigV4 signature."
        ak, day, region, service, signed, sig = m.groups()
        if ak not in CREDS:
            return "UnrecognizedClientException", "The security token included in the request is invalid."
        if region != REGION or service != "bedrock":
            return "InvalidSignatureException", f"Credential should be scoped to a valid region ({REGION}) and service."
        secret, token = CREDS[ak]
        amz_date = self.headers.get("X-Amz-Date", "")
        try:
            when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            return "IncompleteSignatureException", "X-Amz-Date is missing or malformed."
        if day != amz_date[:8]:
            return "InvalidSignatureException", "Credential scope date does not match X-Amz-Date."
        now = datetime.datetime.now(datetime.timezone.utc)
        if abs((now - when).total_seconds()) > 300:
            return "InvalidSignatureException", (
                f"Signature expired: {amz_date} is now earlier than "
                f"{(now - datetime.timedelta(minutes=5)).strftime('%Y%m%dT%H%M%SZ')}")
        names = signed.split(";")
        if "host" not in names or "x-amz-date" not in names:
            return "InvalidSignatureException", "host and x-amz-date must be signed."
        if token is not None:
            if self.headers.get("X-Amz-Security-Token") != token or "x-amz-security-token" not in names:
                return "UnrecognizedClientException", "The security token included in the request is invalid."
        hdrs = {}
        for n in names:
            if n == "host":
                continue
            v = self.headers.get(n)
            if v is None:
                return "InvalidSignatureException", f"signed header {n} is missing"
            hdrs[n] = v
        url = f"http://{self.headers.get('Host')}{self.path}"
        req = AWSRequest(method=self.command, url=url, data=body, headers=hdrs)
        req.context["timestamp"] = amz_date
        signer = SigV4Auth(Credentials(ak, secret, token), service, region)
        canonical = signer.canonical_request(req)
        expected = signer.signature(signer.string_to_sign(req, canonical), req)
        if not hmac.compare_digest(expected, sig):
            return "InvalidSignatureException", (
                "The request signature we calculated does not match the signature you provided.")
        return None

    def do_POST(self):
        n = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(n)
        auth = self.headers.get("Authorization", "")
        m = re.match(r"^/model/([^/]+)/(converse|converse-stream)$", self.path)
        record = {"path": self.path, "auth": "none", "access_key_id": None}
        if auth.startswith("Bearer "):
            record["auth"] = "bearer"
            refused = None if auth[7:] in BEARERS else (
                "UnrecognizedClientException", "The security token included in the request is invalid.")
        else:
            record["auth"] = "sigv4"
            am = AUTH_RE.match(auth)
            record["access_key_id"] = am.group(1) if am else None
            record["session_token"] = self.headers.get("X-Amz-Security-Token") is not None
            refused = self.check_sigv4(body)
        try:
            record["body"] = json.loads(body or b"null")
        except ValueError:
            record["body"] = None
        record["refused"] = refused[0] if refused else None
        with LOCK:
            REQUESTS.append(record)
        if refused:
            self.send_json(403, {"message": refused[1]}, refused[0])
            return
        if not m:
            self.send_json(404, {"message": "Unknown operation"}, "UnknownOperationException")
            return
        model, op = m.group(1), m.group(2)
        req = record["body"] or {}
        msgs = req.get("messages") or []
        if not msgs or not isinstance(msgs[-1].get("content"), list):
            self.send_json(400, {"message": "The model returned the following errors: messages: required"},
                           "ValidationException")
            return
        if "throttled" in model:
            self.send_json(429, {"message": "Too many tokens, please wait before trying again."},
                           "ThrottlingException")
            return
        text = "".join(b.get("text", "") for b in msgs[-1]["content"] if isinstance(b, dict))
        answer = f"echo: {text}"
        usage = {"inputTokens": 11, "outputTokens": 3, "totalTokens": 14}
        if op == "converse":
            self.send_json(200, {"output": {"message": {"role": "assistant", "content": [{"text": answer}]}},
                                 "stopReason": "end_turn", "usage": usage, "metrics": {"latencyMs": 5}})
            return
        half = len(answer) // 2
        data = b"".join([
            event("messageStart", {"role": "assistant"}),
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": answer[:half]}}),
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": answer[half:]}}),
            event("contentBlockStop", {"contentBlockIndex": 0}),
            event("messageStop", {"stopReason": "end_turn"}),
            event("metadata", {"usage": usage, "metrics": {"latencyMs": 5}}),
        ])
        self.send_response(200)
        self.send_header("content-type", "application/vnd.amazon.eventstream")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        # Odd-sized writes: frames arrive split across reads.
        for i in range(0, len(data), 37):
            self.wfile.write(data[i:i + 37])
            self.wfile.flush()


def main():
    global REGION
    ap = argparse.ArgumentParser()
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--cred", action="append", default=[])
    ap.add_argument("--bearer", action="append", default=[])
    a = ap.parse_args()
    REGION = a.region
    for c in a.cred:
        parts = c.split(":")
        CREDS[parts[0]] = (parts[1], parts[2] if len(parts) > 2 else None)
    BEARERS.update(a.bearer)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"listening on 127.0.0.1:{srv.server_address[1]}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
