// Feeds this replica's event bus with what the other replicas commit. Postgres
// triggers (migration 6) send one notification per statement on grid_events,
// naming the jobs that changed and the output that was added; this replica
// reads, in one statement each, the rows and output of the jobs its watchers
// follow and publishes them, and hands a cancel committed elsewhere to the node
// whose stream it holds. Its own commits it publishes itself, so it skips them
// (a cancel whose commit answer was lost then reaches the node through the node
// reconciler instead, within seconds). If the LISTEN connection broke, notifications may have been lost: every
// watcher is then told to read its job again.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { JobState, type LogStream } from '../common/gen/grid/v1/job.js';
import { stateToDb } from '../common/job-state.js';
import type { Sql } from './db/connect.js';
import { publishJobRow, type JobEventBus } from './job-events.js';
import { getJobs, type JobRow } from './job-store.js';
import { readLogsFrom } from './log-store.js';

const CANCELLING = stateToDb(JobState.JOB_STATE_CANCELLING);

export const EVENTS_CHANNEL = 'grid_events';
const RETRY_MS = 500;

/** A notification's payload, as the triggers build it. */
interface Announcement {
  /** The replica whose statement it was (null: not a control plane). */
  o: string | null;
  /** Jobs changed: [id, version, state]. */
  j?: [string, number, string][];
  /** Output added: [job id, attempt, stream, lowest byte offset]. */
  l?: [string, number, LogStream, number][];
}

/** Output of one attempt's stream to read, from this byte offset on. */
interface OutputFrom {
  jobId: string;
  attempt: number;
  stream: LogStream;
  offset: number;
}

export interface JobEventFeed {
  stop(): Promise<void>;
}

export async function startJobEventFeed(deps: {
  sql: Sql;
  replicaId: string;
  events: JobEventBus;
  /** Hands a committed row's cancel to its node's stream, if that is here (the transition owner's). */
  deliverCancel(row: JobRow): boolean;
  log: Logger;
}): Promise<JobEventFeed> {
  const { sql, events, log } = deps;
  // What to read on the next pass: job ids, and output from the lowest offset announced.
  let jobs = new Set<string>();
  let output = new Map<string, OutputFrom>();
  const wantOutput = (f: OutputFrom) => {
    const key = `${f.jobId}/${f.attempt}/${f.stream}`;
    const known = output.get(key);
    if (!known || f.offset < known.offset) output.set(key, f);
  };
  let passing: Promise<void> | undefined;
  let listening = false;
  let stopped = false;

  function announced(payload: string): void {
    let a: Announcement;
    try {
      a = JSON.parse(payload) as Announcement;
    } catch {
      return log.warn({ payload: payload.slice(0, 200) }, 'unreadable notification on grid_events');
    }
    if (a.o === deps.replicaId) return;
    for (const [id, , state] of a.j ?? []) {
      // A cancel is needed by the replica holding the node, which only the row tells.
      if (events.hasListeners(id) || state === CANCELLING) jobs.add(id);
    }
    for (const [jobId, attempt, stream, offset] of a.l ?? []) {
      if (events.hasListeners(jobId)) wantOutput({ jobId, attempt, stream, offset });
    }
    passing ??= pass().finally(() => (passing = undefined));
  }

  /** Reads and publishes what was announced, until nothing is left; output before states, as it was committed. */
  async function pass(): Promise<void> {
    while ((jobs.size > 0 || output.size > 0) && !stopped) {
      const ids = [...jobs];
      const from = [...output.values()];
      jobs = new Set();
      output = new Map();
      try {
        for (const { jobId, chunk } of await readLogsFrom(sql, from)) events.publish(jobId, { kind: 'log', jobId, chunk });
        for (const row of await getJobs(sql, ids)) {
          publishJobRow(events, row);
          deps.deliverCancel(row);
        }
      } catch (err) {
        if (stopped) return;
        log.warn({ err, jobs: ids.length }, 'cannot read what other replicas announced; will try again');
        for (const id of ids) jobs.add(id);
        for (const f of from) wantOutput(f);
        await sleep(RETRY_MS);
      }
    }
  }

  // postgres.js subscribes again by itself whenever the LISTEN connection is
  // back (tested through a crash and through an outage past the connect timeout).
  const subscription = await sql.listen(EVENTS_CHANNEL, announced, () => {
    // Called on every (re)subscription: after a break, anything may have been missed.
    if (listening) for (const jobId of events.watched()) events.publish(jobId, { kind: 'resync', jobId });
    listening = true;
  });

  return {
    async stop() {
      stopped = true;
      await subscription.unlisten().catch(() => {});
      await passing;
    },
  };
}
