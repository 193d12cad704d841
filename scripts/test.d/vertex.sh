#!/usr/bin/env bash
# Google Vertex AI end to end against a loopback token endpoint + Vertex mock (tests/cloud/vertex_mock.py) that
# verifies each JWT assertion's RS256 signature with the service account's public key (a key pair made here, for
# this run only) and its claims, and accepts only the unexpired tokens it issued. 127.0.0.1 only; stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PY="${PYTHON:-python3}"
if ! "$PY" -c "import cryptography" 2>/dev/null; then
  "$PY" -m pip install --quiet cryptography
fi

TMP=$(mktemp -d)
MOCK_PID=""
cleanup() {
  [ -n "$MOCK_PID" ] && kill "$MOCK_PID" 2>/dev/null || true
  [ -n "$MOCK_PID" ] && wait "$MOCK_PID" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

"$PY" - "$TMP" <<'PYEOF'
import sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
d = sys.argv[1]
for name in ("good", "other"):
    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    open(f"{d}/{name}.key", "wb").write(k.private_bytes(serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    open(f"{d}/{name}.pub", "wb").write(k.public_key().public_bytes(serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo))
PYEOF

EMAIL=polyroute-test@fake-project.iam.gserviceaccount.com
"$PY" tests/cloud/vertex_mock.py --public-key "$TMP/good.pub" --email "$EMAIL" --project test-project \
  --location us-east5 --lifetime 4 >"$TMP/mock.out" &
MOCK_PID=$!
for _ in $(seq 100); do [ -s "$TMP/mock.out" ] && break; sleep 0.1; done
ADDR=$(head -1 "$TMP/mock.out" | sed 's/^listening on //')
[ -n "$ADDR" ] || { echo "vertex mock did not start" >&2; exit 1; }

for name in good other; do
  "$PY" - "$TMP/$name.key" "$EMAIL" "http://$ADDR/token" >"$TMP/$name.json" <<'PYEOF'
import json, sys
print(json.dumps({"type": "service_account", "project_id": "test-project", "private_key_id": "fake-kid",
                  "private_key": open(sys.argv[1]).read(), "client_email": sys.argv[2], "token_uri": sys.argv[3]}))
PYEOF
done

GOOGLE_APPLICATION_CREDENTIALS="$TMP/good.json" POLYROUTE_VERTEX_OTHER_KEY="$TMP/other.json" \
  POLYROUTE_VERTEX_MOCK="http://$ADDR" \
  cargo test -q -p polyroute --test vertex_mock -- --nocapture
