// Reading a JWT's claims without verifying it (the server verifies): the client only needs
// `exp` to refresh before expiry and `sub` to know its own `user:<sub>` inbox.

function base64urlDecode(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const padded = b64 + "===".slice((b64.length + 3) % 4);
  const bin = atob(padded);
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/** The token's claims, or null when it is not a readable JWT. */
export function claims(token) {
  if (typeof token !== "string") return null;
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const value = JSON.parse(base64urlDecode(parts[1]));
    return value && typeof value === "object" ? value : null;
  } catch {
    return null;
  }
}

/** When to fetch the next token: ms from `now`, or null when the token has no `exp`. */
export function refreshDelay(token, now = Date.now()) {
  const exp = claims(token)?.exp;
  if (typeof exp !== "number") return null;
  const left = exp * 1000 - now;
  // A quarter of what is left, at most 30 s early, never sooner than 1 s from now.
  const margin = Math.min(30_000, left / 4);
  return Math.max(1_000, left - margin);
}
