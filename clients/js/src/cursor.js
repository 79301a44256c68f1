// The SSE / long-poll cursor (crates/core/src/cursor.rs, version 1), written and read by the
// client so that a subscription's {offset, epoch} carries over between transports: a client
// that moves from WebSocket to SSE resumes each channel exactly where it stood.
//
//   0x01, then per channel sorted by name: varint(len) name, varint(len) epoch, varint(offset)
// in base64url without padding; varints are unsigned LEB128.

const VERSION = 1;
const enc = new TextEncoder();
const dec = new TextDecoder();

function putVarint(out, n) {
  let v = BigInt(n);
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
}

function putBytes(out, bytes) {
  putVarint(out, bytes.length);
  for (const b of bytes) out.push(b);
}

function toBase64url(bytes) {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64url(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/** Byte-wise order of channel names (the server's BTreeMap order; names are ASCII). */
function byName(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Encodes `positions` (a Map or object: channel → {offset, epoch}). */
export function encodeCursor(positions) {
  const entries = positions instanceof Map ? [...positions] : Object.entries(positions);
  entries.sort(([a], [b]) => byName(a, b));
  const raw = [VERSION];
  for (const [channel, { offset, epoch }] of entries) {
    putBytes(raw, enc.encode(channel));
    putBytes(raw, enc.encode(epoch));
    putVarint(raw, offset);
  }
  return toBase64url(raw);
}

/** Decodes a cursor into a Map channel → {offset, epoch}; throws on malformed input. */
export function decodeCursor(text) {
  const raw = fromBase64url(text);
  if (raw[0] !== VERSION) throw new Error("unsupported cursor version");
  let i = 1;
  const varint = () => {
    let n = 0n;
    let shift = 0n;
    for (;;) {
      if (i >= raw.length) throw new Error("truncated cursor");
      const byte = raw[i++];
      n |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return n;
      shift += 7n;
    }
  };
  const bytes = () => {
    const len = Number(varint());
    if (i + len > raw.length) throw new Error("truncated cursor");
    const out = raw.subarray(i, i + len);
    i += len;
    return dec.decode(out);
  };
  const positions = new Map();
  while (i < raw.length) {
    const channel = bytes();
    const epoch = bytes();
    const offset = Number(varint());
    positions.set(channel, { offset, epoch });
  }
  return positions;
}
