# Shared by the gateway tests in scripts/test.d (source it from the repository root; it lives outside test.d
# because every *.sh there runs as a test). Sets ROOT, CARGO_TARGET_DIR, BIN and a throwaway TMP, and starts and
# stops the loopback processes every gateway test needs: `polyroute-mock` and `polyroute serve`, each on a free
# port of 127.0.0.1, each stopped by its PID on exit (with TMP removed).
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$CARGO_TARGET_DIR/debug"
TMP=$(mktemp -d)
MOCK_PID=""
SERVE_PID=""
cleanup() {
  for p in "$SERVE_PID" "$MOCK_PID"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "$SERVE_PID" "$MOCK_PID"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

first_line() { # file: wait (at most 10 s) for its first line, then print it
  for _ in $(seq 100); do [ -s "$1" ] && break; sleep 0.1; done
  head -1 "$1"
}

start_mock() { # [mock options...]: sets MOCK_PID and MOCK (the mock's base URL)
  "$BIN/polyroute-mock" --port 0 "$@" >"$TMP/mock.out" &
  MOCK_PID=$!
  MOCK="http://$(first_line "$TMP/mock.out" | sed 's/^listening on //')"
}

start_serve() { # config: sets SERVE_PID and URL; exits with serve's stderr when it did not start
  "$BIN/polyroute" serve --config "$1" --port 0 >"$TMP/serve.out" 2>"$TMP/serve.err" &
  SERVE_PID=$!
  URL=$(first_line "$TMP/serve.out" | sed 's/^listening on //')
  case "$URL" in
    http://127.0.0.1:*) ;;
    *) cat "$TMP/serve.err" >&2; echo "serve did not start: $URL" >&2; exit 1;;
  esac
}

stop_serve() { # stop the gateway (SIGTERM) and wait for its exit status
  kill -TERM "$SERVE_PID"
  wait "$SERVE_PID"
  SERVE_PID=""
}
