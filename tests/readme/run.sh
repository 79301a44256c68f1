#!/usr/bin/env bash
# Pastes the README's walk-through into a shell, block by block and in order, as a newcomer
# would, and checks that each does what the README says. The commands are taken verbatim from
# README.md: each ```sh block the walk-through wants run is preceded by a marker comment
#
#   <!-- readme-test: KIND [node] [ready=TEXT] [expect=TEXT] -->
#
# KIND: `server` (started in the background; the banner must appear), `source` (sourced into
# this shell, as a user loads the tokens), `background` (a subscriber left running; `ready` must
# appear before the next block runs, `expect` by the end), `run` (must exit 0 and print
# `expect`). `node`: the block runs `node -e`; on Node older than 22 the script adds
# `--experimental-websocket`, exactly as the README tells Node 20 users to.
#
# It runs from the repository root on 127.0.0.1:3000 with ./data, like the README. Set
# README_TEST_ADDR=127.0.0.1:PORT to use another address (the blocks' 127.0.0.1:3000 is replaced
# and SWITCHBOARD_LISTEN set for the server). Every process it starts runs in its own process
# group and is stopped by that group's id at the end.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
work="$(mktemp -d)"
groups=()
cleanup() {
  for g in "${groups[@]}"; do
    kill -TERM -- "-$g" 2>/dev/null || true
  done
  for g in "${groups[@]}"; do
    for _ in $(seq 1 50); do
      kill -0 -- "-$g" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL -- "-$g" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  printf '\nREADME WALK-THROUGH FAILED: %s\n' "$*" >&2
  for f in "$work"/*.out; do
    [ -f "$f" ] && { printf -- '--- %s\n' "$(basename "$f")"; tail -n 20 "$f"; } >&2
  done
  exit 1
}

# The blocks, as files 1.sh, 2.sh, … with their markers in 1.spec, 2.spec, …
awk -v dir="$work" '
  match($0, /<!-- readme-test: .* -->/) {
    spec = substr($0, RSTART + 18, RLENGTH - 22); want = 1; next
  }
  want && /^[ \t]*```sh[ \t]*$/ {
    n++; inblock = 1; want = 0; match($0, /[^ ]/); indent = RSTART - 1
    print spec > (dir "/" n ".spec"); printf "" > (dir "/" n ".sh"); next
  }
  want && NF { printf "marker without a following sh block: %s\n", spec > "/dev/stderr"; exit 1 }
  inblock && /^[ \t]*```[ \t]*$/ { inblock = 0; next }
  inblock { print substr($0, indent + 1) >> (dir "/" n ".sh") }
  END { print n + 0 > (dir "/count") }
' README.md || fail "README.md markers are broken"
count="$(cat "$work/count")"
[ "$count" -ge 8 ] || fail "only $count marked blocks in README.md (expected the whole walk-through)"

addr="${README_TEST_ADDR:-127.0.0.1:3000}"
node_major="$(node -p 'process.versions.node.split(".")[0]')"

# Waits up to $3 seconds for $2 to appear in file $1; fails if the process group $4 died.
wait_for() {
  local file="$1" text="$2" secs="$3" group="${4:-}"
  for _ in $(seq 1 $((secs * 5))); do
    grep -qF -- "$text" "$file" 2>/dev/null && return 0
    # The group exists once the child has called setsid; until then only its pid does (a check
    # in between used to read as "died" and failed the run with an empty log).
    if [ -n "$group" ] && ! kill -0 -- "-$group" 2>/dev/null && ! kill -0 "$group" 2>/dev/null; then
      grep -qF -- "$text" "$file" 2>/dev/null && return 0
      return 1
    fi
    sleep 0.2
  done
  return 1
}

declare -a expects=()
for i in $(seq 1 "$count"); do
  spec="$(cat "$work/$i.spec")"
  kind="${spec%% *}"
  ready="$(sed -nE 's/.*ready=([^ ]+).*/\1/p' <<<"$spec")"
  expect="$(sed -nE 's/.*expect=([^ ]+).*/\1/p' <<<"$spec")"
  block="$work/$i.sh"
  if [ "$addr" != "127.0.0.1:3000" ]; then
    sed -i "s/127\.0\.0\.1:3000/$addr/g" "$block"
  fi
  if [[ " $spec " == *" node "* ]] && [ "$node_major" -lt 22 ]; then
    sed -i 's/^node -e /node --experimental-websocket -e /' "$block"
  fi
  printf '\n==> block %s (%s):\n%s\n' "$i" "$spec" "$(cat "$block")"
  out="$work/$i.out"
  case "$kind" in
    server)
      if [ "$addr" != "127.0.0.1:3000" ]; then export SWITCHBOARD_LISTEN="$addr"; fi
      setsid bash "$block" >"$out" 2>&1 &
      groups+=("$!")
      wait_for "$out" "Switchboard is listening on http://$addr/" 900 "$!" ||
        fail "block $i: no listening banner"
      wait_for "$out" "export VIEWER=" 10 || fail "block $i: no demo tokens printed"
      unset SWITCHBOARD_LISTEN
      ;;
    source)
      set +u
      # shellcheck disable=SC1090
      . "$block"
      set -u
      [ -n "${HQ:-}" ] || fail "block $i: HQ is not set after sourcing"
      ;;
    background)
      setsid bash "$block" >"$out" 2>&1 &
      groups+=("$!")
      if [ -n "$ready" ]; then
        wait_for "$out" "$ready" 15 "$!" || fail "block $i: never printed $ready"
      fi
      [ -n "$expect" ] && expects+=("$i:$expect")
      ;;
    run)
      timeout 30 bash "$block" >"$out" 2>&1 || fail "block $i exited with $?"
      [ -z "$expect" ] || grep -qF -- "$expect" "$out" || fail "block $i did not print $expect"
      cat "$out"
      ;;
    *) fail "block $i: unknown kind $kind" ;;
  esac
done

for e in "${expects[@]}"; do
  i="${e%%:*}"
  text="${e#*:}"
  wait_for "$work/$i.out" "$text" 15 || fail "block $i (left running) never printed $text"
  echo "block $i printed $text"
done
echo
echo "README walk-through: all $count blocks behaved as the README says"
