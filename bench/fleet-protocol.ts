// What bench/scale-fleet.ts and its forked bench/fleet-process.ts children say
// to each other over IPC (the parent cannot import the child's module: it runs).
export interface FleetStart {
  type: 'start';
  address: string;
  /** Node ids are `${prefix}-${i}` for i in [from, from + count). */
  prefix: string;
  from: number;
  count: number;
  agentsPerConnection: number;
  /** Hellos sent per second by this process (a ramp, so that starting is not a storm). */
  connectPerSecond: number;
  slots: number;
}

export type ToFleet = FleetStart | { type: 'silence'; nodeIds: string[] } | { type: 'stop' };

export interface FleetProcessStats {
  /** Agents whose stream is open and welcomed now. */
  open: number;
  /** Welcomes received, ever (reconnects included). */
  welcomes: number;
  /** performance.timeOrigin + now of the last welcome (Date.now() clock). */
  lastWelcomeAt: number;
  /** Streams that had been welcomed and then ended without this process asking. */
  dropped: number;
  droppedWhy: Record<string, number>;
  /** Connect attempts that ended before a welcome (control plane away, refused...). */
  failedAttempts: number;
  failedWhy: Record<string, number>;
  heartbeatsSent: number;
  /** Worst event-loop delay of this process since the last stats, ms. */
  maxLoopDelayMs: number;
}

export type FromFleet =
  | { type: 'stats'; stats: FleetProcessStats }
  | { type: 'silenced'; agents: { nodeId: string; lastHeartbeatAt: number; silencedAt: number }[] }
  | { type: 'silent-closed'; nodeId: string; at: number; why: string }
  | { type: 'stopped' };

/** Stats of a process that has reported nothing yet. */
export function emptyFleetStats(): FleetProcessStats {
  return { open: 0, welcomes: 0, lastWelcomeAt: 0, dropped: 0, droppedWhy: {}, failedAttempts: 0, failedWhy: {}, heartbeatsSent: 0, maxLoopDelayMs: 0 };
}
