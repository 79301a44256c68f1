// Type declarations for src/react.js.
import type { Switchboard, SwitchboardOptions } from "./index.js";

/** A connected client for the component's lifetime; null until the first effect ran. */
export declare function useSwitchboard(url: string, options?: SwitchboardOptions): Switchboard | null;

/** Subscribes while mounted; `handlers` maps event names to functions. */
export declare function useChannel(
  client: Switchboard | null,
  channel: string | null,
  handlers?: Record<string, (...args: any[]) => void>,
): void;
