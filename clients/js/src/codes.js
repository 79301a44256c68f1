// What a close code means for reconnecting: the range rule of docs/protocol.md ("Close codes"),
// the same as switchboard_core::codes::reconnect_policy, so a code this client has never heard
// of (a proxy's, a future server's) is still handled by its class.

/** "reconnect" | "stop" | "refresh" (fetch a fresh token, then reconnect). */
export function reconnectPolicy(code) {
  if (code === 1000) return "stop";
  if (code >= 1001 && code <= 2999) return "reconnect";
  if (code >= 4000 && code <= 4003) return "stop";
  if (code >= 4004 && code <= 4007) return "refresh";
  if (code >= 4008 && code <= 4009) return "reconnect";
  if (code >= 4010 && code <= 4099) return "stop";
  return "reconnect";
}

/** Close codes for HTTP answers of the SSE and long-poll endpoints. */
export function closeCodeForHttp(status, message = "") {
  if (status === 401) {
    if (/expired/i.test(message)) return 4004;
    if (/required/i.test(message)) return 4001;
    return 4002;
  }
  if (status === 429) return 4008;
  return 3000 + Math.min(999, status);
}
