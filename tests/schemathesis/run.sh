#!/usr/bin/env bash
# Fuzzes the REST API from its own document: starts the release binary on a free port with a
# temporary data dir, mints an `admin` token with `switchboard token` (admins may do what every
# role may, so the writes that need `hq` and the admin API are exercised past their 401/403),
# checks /openapi.json against the OpenAPI 3.1
# specification, then runs schemathesis against it within a time budget with the checks
# not_a_server_error, status_code_conformance and response_schema_conformance. Exits non-zero
# on any failure (and when the server printed a panic); the server is stopped whatever happens.
#
#   SCHEMATHESIS_BIN        the binary (default target/release/switchboard)
#   SCHEMATHESIS            the schemathesis command (default: schemathesis on PATH)
#   SCHEMATHESIS_MAX_TIME   seconds of fuzzing (default 120; the whole run stays under 3 min)
#   SCHEMATHESIS_SEED       a seed, to replay a run
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
bin="${SCHEMATHESIS_BIN:-target/release/switchboard}"
st="${SCHEMATHESIS:-schemathesis}"
max_time="${SCHEMATHESIS_MAX_TIME:-120}"
python="$(dirname "$(command -v "$st")")/python"
[ -x "$python" ] || python=python3
[ -x "$bin" ] || { echo "run.sh: $bin not found; build it with cargo build --release" >&2; exit 2; }

work="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
export SWITCHBOARD_AUTH__JWT_SECRET="schemathesis-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
# Limits high enough that the fuzzer reaches the handlers rather than the rate limiter (the 429
# answers stay documented); payments settle at once so their tasks do not pile up. The demo
# pipeline stays on: it seeds the demo cities, so GET /api/cities/nairobi (the documented
# example) finds a snapshot.
export SWITCHBOARD_LIMITS__REST_WRITES_PER_MINUTE=1000000
export SWITCHBOARD_LIMITS__CLIENT_MESSAGES_PER_MINUTE=1000000
export SWITCHBOARD_LIMITS__FEED_REQUESTS_PER_MINUTE=1000000
export SWITCHBOARD_PAYMENTS__PROCESSING_DELAY_MS=10
export RUST_LOG=warn

"$bin" serve --listen "127.0.0.1:$port" --data-dir "$work/data" >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 150); do
  curl -fsS "$base/healthz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/server.log" >&2; echo "run.sh: the server exited" >&2; exit 1; }
  sleep 0.2
done
curl -fsS "$base/healthz" >/dev/null || { echo "run.sh: the server did not come up" >&2; exit 1; }

token="$("$bin" token --data-dir "$work/data" --sub schemathesis-admin --role admin --channels 'city:*' --ttl 1h)"

curl -fsS "$base/openapi.json" -o "$work/openapi.json"
"$python" -c 'import json, sys
from openapi_spec_validator import validate
from openapi_spec_validator.validation.validators import OpenAPIV31SpecValidator
doc = json.load(open(sys.argv[1]))
assert doc["openapi"] == "3.1.0", doc["openapi"]
validate(doc, cls=OpenAPIV31SpecValidator)
print("openapi.json: valid OpenAPI 3.1,", len(doc["paths"]), "paths")' "$work/openapi.json"

status=0
seed=()
[ -n "${SCHEMATHESIS_SEED:-}" ] && seed=(--seed "$SCHEMATHESIS_SEED")
"$st" run "$base/openapi.json" \
  --checks not_a_server_error,status_code_conformance,response_schema_conformance \
  --header "Authorization: Bearer $token" \
  --max-time "$max_time" \
  --workers "${SCHEMATHESIS_WORKERS:-1}" \
  ${SCHEMATHESIS_ARGS:-} \
  --request-timeout 10 \
  --no-color \
  "${seed[@]}" || status=$?

if grep -n 'panicked' "$work/server.log"; then
  echo "run.sh: the server panicked (above)" >&2
  status=1
fi
if [ "$status" -ne 0 ]; then
  echo "run.sh: schemathesis found failures (exit $status); server log:" >&2
  tail -n 50 "$work/server.log" >&2
fi
exit "$status"
