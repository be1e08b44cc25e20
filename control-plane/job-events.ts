// The publish/subscribe seam for job events (state changes, output, pull progress). Everything
// that reacts to a job goes through here, so that a second control-plane replica
// can later feed it from Postgres LISTEN/NOTIFY without touching the subscribers.
import type { ImagePullProgress, Job, LogChunk } from '../common/gen/grid/v1/job.js';
import { rowToJob, type JobRow } from './job-store.js';

export type JobEvent =
  /** Published after the change is committed; `job.state` is the new state. */
  | { kind: 'state'; job: Job; version: number }
  | { kind: 'log'; jobId: string; chunk: LogChunk }
  /** Live only, never stored. */
  | { kind: 'pull'; jobId: string; progress: ImagePullProgress };

export type JobEventListener = (event: JobEvent) => void;

export interface JobEventBus {
  publish(jobId: string, event: JobEvent): void;
  /** Returns the unsubscribe function. */
  subscribe(jobId: string, listener: JobEventListener): () => void;
  hasListeners(jobId: string): boolean;
}

export function createLocalEventBus(): JobEventBus {
  const listeners = new Map<string, Set<JobEventListener>>();
  return {
    publish(jobId, event) {
      for (const listener of listeners.get(jobId) ?? []) listener(event);
    },
    hasListeners: (jobId) => listeners.has(jobId),
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
