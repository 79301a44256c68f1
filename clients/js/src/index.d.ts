// Type declarations for the Switchboard JavaScript client (src/index.js).

/** A stream position: the last offset seen on a channel and the epoch it belongs to. */
export interface Position {
  offset: number;
  epoch: string;
}

export type TransportName = "websocket" | "sse" | "poll";
export type ConnectionState = "connecting" | "connected" | "disconnected";

/** A constructor compatible with the browser's WebSocket (e.g. the `ws` package in Node). */
export interface WebSocketLike {
  readonly readyState: number;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface SwitchboardOptions {
  /** A fixed token (JWT). */
  token?: string | null;
  /** Called on connect and before the token expires; its result replaces the token. */
  getToken?: () => string | null | Promise<string | null>;
  /** Order of preference; default `["websocket", "sse", "poll"]`. */
  transports?: TransportName[];
  /** ms; the first retry waits between this and twice this. Default 500. */
  minReconnectDelay?: number;
  /** ms; no retry waits longer. Default 20000. */
  maxReconnectDelay?: number;
  /** A WebSocket constructor where there is no global one (Node 20: `require("ws")`). */
  WebSocket?: WebSocketConstructor;
  /** ms a transport may take to open before the next one is tried. Default 10000. */
  connectTimeout?: number;
  /** ms of silence beyond the heartbeat after which a connection counts as dead. Default 10000. */
  heartbeatGrace?: number;
  /** The server's SSE heartbeat (`sse.heartbeat_ms`), ms. Default 15000. */
  sseHeartbeat?: number;
  /** Seconds a long-poll request waits on the server. Default 25. */
  pollTimeout?: number;
  /** ms between attempts to move from a fallback back to the preferred transport. Default 60000. */
  retryPreferredAfter?: number;
  /** A fetch implementation (default: the global one). */
  fetch?: typeof fetch;
}

export interface StateEvent {
  state: ConnectionState;
  /** The transport in use when connected, else null. */
  transport: TransportName | null;
}

export interface Publication<T = unknown> {
  channel: string;
  event: string;
  data: T;
  /** Absent on transient notices (presence joins and leaves, `initial_data`). */
  offset?: number;
  epoch?: string;
  timestamp?: number;
}

export interface SubscribedEvent extends Position {
  channel: string;
  recovered: boolean;
}

export interface GapEvent extends Position {
  channel: string;
}

export interface PresenceMember {
  user: string | null;
  connectionId: string;
}

/** An error from the server or the connection. */
export declare class SwitchboardError extends Error {
  /** HTTP status, for errors answered over HTTP. */
  status?: number;
  /** Protocol error code (`forbidden`, `bad_request`, …). */
  code?: string;
  /** The field a 422 names. */
  field?: string;
  /** The close code that ended the connection, for a do-not-reconnect close. */
  closeCode?: number;
}

type Unsubscribe = () => void;

export declare class Subscription {
  readonly channel: string;
  /** The last position handed to handlers, or null before the first. */
  readonly position: Position | null;
  readonly state: "subscribing" | "subscribed" | "unsubscribed" | "failed";
  /** Where a resubscribe resumes from. */
  readonly since: Position | undefined;
  on(event: "subscribed", handler: (ev: SubscribedEvent) => void): Unsubscribe;
  on(event: "publication", handler: (pub: Publication) => void): Unsubscribe;
  on(event: "gap", handler: (ev: GapEvent) => void): Unsubscribe;
  on(event: "error", handler: (err: SwitchboardError) => void): Unsubscribe;
  on(event: "unsubscribed", handler: (ev: { channel: string }) => void): Unsubscribe;
  /** A handler per event name, e.g. `"mission-update"`. */
  on<T = any>(event: string, handler: (data: T, pub: Publication<T>) => void): Unsubscribe;
  once(event: string, handler: (...args: any[]) => void): Unsubscribe;
  off(event: string, handler?: (...args: any[]) => void): void;
  unsubscribe(): void;
}

export declare class Switchboard {
  constructor(url: string, options?: SwitchboardOptions);
  readonly url: string;
  readonly state: ConnectionState;
  /** The transport in use now, or null when not connected. */
  readonly transport: TransportName | null;
  /** The native WebSocket connection id (`conn:<id>`), null on other transports. */
  readonly connectionId: string | null;
  on(event: "state", handler: (ev: StateEvent) => void): Unsubscribe;
  on(event: "error", handler: (err: SwitchboardError | Error) => void): Unsubscribe;
  /** Deliveries on personal channels (`conn:<id>`, `user:<sub>`) without a subscription. */
  on(event: "publication", handler: (pub: Publication) => void): Unsubscribe;
  once(event: string, handler: (...args: any[]) => void): Unsubscribe;
  off(event: string, handler?: (...args: any[]) => void): void;
  connect(): void;
  disconnect(): void;
  subscribe(channel: string, options?: { since?: Position }): Subscription;
  publish(channel: string, event: string, data?: unknown): Promise<{ offset: number }>;
  presence(channel: string): Promise<PresenceMember[]>;
}

/** The reconnect delay (ms) before attempt `attempt` (0-based). */
export declare function backoff(attempt: number, min: number, max: number, random?: () => number): number;
/** What a close code means for reconnecting. */
export declare function reconnectPolicy(code: number): "reconnect" | "stop" | "refresh";
/** Writes an SSE / long-poll cursor from per-channel positions. */
export declare function encodeCursor(positions: Map<string, Position> | Record<string, Position>): string;
/** Reads an SSE / long-poll cursor. */
export declare function decodeCursor(text: string): Map<string, Position>;
