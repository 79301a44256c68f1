// HTTP helpers shared by the SSE and long-poll transports and the client's HTTP calls: the
// token always travels in `Authorization: Bearer`, never in the URL.

/** An error answered by the server (HTTP or protocol), with its status and/or code. */
export class SwitchboardError extends Error {
  constructor(message, { status, code, field, closeCode } = {}) {
    super(message);
    this.name = "SwitchboardError";
    if (status !== undefined) this.status = status;
    if (code !== undefined) this.code = code;
    if (field !== undefined) this.field = field;
    if (closeCode !== undefined) this.closeCode = closeCode;
  }
}

export function authHeaders(token, extra = {}) {
  const headers = { ...extra };
  if (token) headers.Authorization = `Bearer ${token}`;
  return headers;
}

/** The `{error, field}` body of a failed answer (or the status text). */
export async function errorOf(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not JSON
  }
  const message = (body && typeof body.error === "string" && body.error) || res.statusText || `HTTP ${res.status}`;
  return new SwitchboardError(message, { status: res.status, field: body?.field });
}

/** A JSON request; resolves with the parsed answer or rejects with a SwitchboardError. */
export async function requestJson(fetchFn, url, { method = "GET", token, body, signal } = {}) {
  const headers = authHeaders(token, body !== undefined ? { "Content-Type": "application/json" } : {});
  const res = await fetchFn(url, {
    method,
    headers,
    body: body !== undefined ? JSON.stringify(body) : undefined,
    signal,
    cache: "no-store",
  });
  if (!res.ok) throw await errorOf(res);
  return res.json();
}

/** The channel a feed refusal names ("… channel 'x'"), so one refused channel does not stop
 * the others. */
export function refusedChannel(message) {
  const m = /channel '([^']+)'/.exec(message ?? "");
  return m ? m[1] : null;
}
