// Which sessions have been silent past the heartbeat timeout. Pure.
export interface Heard {
  lastSeenAt: Date;
  ready: boolean;
  judged: boolean;
}

export function silentSessions<T extends Heard>(sessions: T[], now: number, timeoutMs: number): T[] {
  return sessions.filter((s) => s.ready && !s.judged && now - s.lastSeenAt.getTime() > timeoutMs);
}
