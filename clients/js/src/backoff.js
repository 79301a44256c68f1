// Reconnect delays: exponential with full jitter, bounded by [min, max].
//
// Attempt n (0-based) waits `min + U(0, min(max, min * 2^n))`, capped at `max`: the first retry
// comes after min..2*min, the window doubles with each failure, and the uniform spread keeps a
// crowd of clients that lost the same server from coming back in the same instant.

/** The delay in ms before reconnect attempt `attempt` (0 = the first retry). */
export function backoff(attempt, min, max, random = Math.random) {
  const n = Math.max(0, Math.min(30, Math.floor(attempt)));
  const window = Math.min(max, min * 2 ** n);
  return Math.min(max, min + Math.floor(random() * window));
}
