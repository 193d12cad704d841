#!/usr/bin/env bash
# Amazon Bedrock end to end against a loopback mock that checks what polyroute sends with an independent
# implementation: tests/cloud/bedrock_mock.py re-signs each request with botocore (SigV4) and refuses a wrong
# signature, and encodes ConverseStream answers in the binary event-stream framing itself. Fake credentials only;
# 127.0.0.1 only; the mock is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PY="${PYTHON:-python3}"
if ! "$PY" -c "import botocore" 2>/dev/null; then
  "$PY" -m pip install --quiet botocore
fi

TMP=$(mktemp -d)
MOCK_PID=""
cleanup() {
  [ -n "$MOCK_PID" ] && kill "$MOCK_PID" 2>/dev/null || true
  [ -n "$MOCK_PID" ] && wait "$MOCK_PID" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

"$PY" tests/cloud/bedrock_mock.py --region us-west-2 \
  --cred AKIDPOLYROUTEENV1:fake-env-secret:fake-session-token \
  --cred AKIDPOLYROUTEDEV1:fake-dev-secret \
  --bearer fake-bedrock-api-key >"$TMP/mock.out" &
MOCK_PID=$!
for _ in $(seq 100); do [ -s "$TMP/mock.out" ] && break; sleep 0.1; done
ADDR=$(head -1 "$TMP/mock.out" | sed 's/^listening on //')
[ -n "$ADDR" ] || { echo "bedrock mock did not start" >&2; exit 1; }

cat >"$TMP/credentials" <<CRED
[dev]
aws_access_key_id = AKIDPOLYROUTEDEV1
aws_secret_access_key = fake-dev-secret

[bad]
aws_access_key_id = AKIDPOLYROUTEDEV1
aws_secret_access_key = not-the-right-secret
CRED
cat >"$TMP/config" <<CONF
[profile dev]
region = us-west-2
CONF

env -u AWS_PROFILE -u AWS_REGION -u AWS_DEFAULT_REGION -u AWS_BEARER_TOKEN_BEDROCK \
  AWS_ACCESS_KEY_ID=AKIDPOLYROUTEENV1 AWS_SECRET_ACCESS_KEY=fake-env-secret AWS_SESSION_TOKEN=fake-session-token \
  AWS_SHARED_CREDENTIALS_FILE="$TMP/credentials" AWS_CONFIG_FILE="$TMP/config" \
  POLYROUTE_BEDROCK_MOCK="http://$ADDR" \
  cargo test -q -p polyroute --test bedrock_mock -- --nocapture
