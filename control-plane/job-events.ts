// The publish/subscribe seam for job events (state changes, output, pull progress). Everything
// that reacts to a job goes through here. A replica publishes what it commits
// itself; what the other replicas commit reaches it from Postgres (job-event-feed.ts).
import type { ImagePullProgress, Job, LogChunk } from '../common/gen/grid/v1/job.js';
import { rowToJob, type JobRow } from './job-store.js';

export type JobEvent =
  /** Published after the change is committed; `job.state` is the new state. */
  | { kind: 'state'; job: Job; version: number }
  | { kind: 'log'; jobId: string; chunk: LogChunk }
  /** Live only, never stored. */
  | { kind: 'pull'; jobId: string; progress: ImagePullProgress }
  /** Events may have been missed (the feed from Postgres broke): read the job and its output again. */
  | { kind: 'resync'; jobId: string };

export type JobEventListener = (event: JobEvent) => void;

export interface JobEventBus {
  publish(jobId: string, event: JobEvent): void;
  /** Returns the unsubscribe function. */
  subscribe(jobId: string, listener: JobEventListener): () => void;
  hasListeners(jobId: string): boolean;
  /** The jobs someone is subscribed to. */
  watched(): string[];
}

export function createLocalEventBus(): JobEventBus {
  const listeners = new Map<string, Set<JobEventListener>>();
  return {
    publish(jobId, event) {
      for (const listener of listeners.get(jobId) ?? []) listener(event);
    },
    hasListeners: (jobId) => listeners.has(jobId),
    watched: () => [...listeners.keys()],
    subscribe(jobId, listener) {
      let set = listeners.get(jobId);
      if (!set) listeners.set(jobId, (set = new Set()));
      set.add(listener);
      return () => {
        set.delete(listener);
        if (set.size === 0) listeners.delete(jobId);
      };
    },
  };
}

/**
 * Publishes a job's committed row as a state event. Decoding a row (its spec can
 * hold megabytes of script and inputs) is skipped when nobody watches the job;
 * pass `job` when the caller has decoded it already.
 */
export function publishJobRow(bus: JobEventBus, row: JobRow, job?: Job): void {
  if (!bus.hasListeners(row.id)) return;
  bus.publish(row.id, { kind: 'state', job: job ?? rowToJob(row), version: row.version });
}
