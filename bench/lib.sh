# bench/lib.sh — shell helpers shared by bench/run and bench/profile (sourced, not run).

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Waits up to 20 s for something to listen on 127.0.0.1:$1.
wait_port() {
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "server on port $1 did not come up" >&2
  return 1
}

# start_switchboard BIN PORT DATA_DIR LOG: starts Switchboard in the background ($! is its pid)
# with $SECRET as the JWT secret, logs at warn, and the per-user, per-IP and REST limits
# raised (SSE and long-poll requests too): the defaults would rate-limit one benchmarking user
# on one address.
start_switchboard() {
  RUST_LOG=warn \
  SWITCHBOARD_AUTH__JWT_SECRET="$SECRET" \
  SWITCHBOARD_LIMITS__CLIENT_MESSAGES_PER_MINUTE=10000000 \
  SWITCHBOARD_LIMITS__REST_WRITES_PER_MINUTE=10000000 \
  SWITCHBOARD_LIMITS__FEED_REQUESTS_PER_MINUTE=10000000 \
  SWITCHBOARD_LIMITS__MAX_CONNECTIONS_PER_IP=1000000 \
    "$1" --listen "127.0.0.1:$2" --data-dir "$3" >"$4" 2>&1 &
}
