// What a transport gets from the client (documentation only; see client.js).
//
// @typedef {object} TransportContext
// @property {string} baseUrl               the server, e.g. "http://127.0.0.1:3000"
// @property {() => (string|null)} token    the current token (null: anonymous)
// @property {() => Array<{channel: string, since?: {offset: number, epoch: string}}>} channels
//           the channels a one-way transport must carry, with their resume positions
// @property {object} options               the client's options (timeouts, WebSocket, …)
// @property {typeof fetch} fetch
// @property {(info: {connectionId?: string}) => void} onOpen      the transport is usable
// @property {(msg: object) => void} onMessage  a native-protocol message or delivery
// @property {(reason: {code: number, reason: string}) => void} onClose  it ended by itself
export {};
