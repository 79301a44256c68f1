// Switchboard's JavaScript client: an ES module with no dependencies and no build step, for
// browsers and Node >= 20. See clients/js/README.md.

export { Switchboard } from "./client.js";
export { Subscription } from "./subscription.js";
export { SwitchboardError } from "./http.js";
export { backoff } from "./backoff.js";
export { reconnectPolicy } from "./codes.js";
export { encodeCursor, decodeCursor } from "./cursor.js";
