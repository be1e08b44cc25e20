// Job output in Postgres: one statement for the output of many attempts, each fenced by its attempt,
// and idempotent (a resent or replayed chunk adds only bytes not yet stored).
import { LogChunk, LogStream } from '../common/gen/grid/v1/job.js';
import { ACTIVE_DB_STATES } from '../common/job-state.js';
import { attemptKeyOf, type AttemptRef, type FromNode } from '../common/attempt.js';
import type { Sql, TransactionSql } from './db/connect.js';


interface LogRow {
  attempt: number;
  stream: number;
  byte_offset: number;
  data: Buffer;
  logged_at: Date;
}

/** Output reported for one attempt. */
export interface OutputReport {
  attempt: AttemptRef;
  chunks: LogChunk[];
}

/**
 * Stores the output of many attempts in one statement and returns, per report,
 * what was new in it, or undefined when its attempt is not the job's current
 * active one (refused). Each chunk is trimmed against what is already stored for
 * its stream (and against the chunks before it in this call), so output replayed
 * by a restarted agent from offset 0, in chunks cut differently, adds no duplicate.
 */
export async function appendOutputs(sql: Sql | TransactionSql, reports: FromNode<OutputReport>[]): Promise<(LogChunk[] | undefined)[]> {
  if (reports.length === 0) return [];
  const chunks = withoutOverlaps(reports);
  const db = sql as Sql;
  const col = <T>(f: (c: (typeof chunks)[number]) => T) => chunks.map(f);
  const rows = await db<(LogRow & { job_id: string; node_id: string | null; is_chunk: boolean })[]>`
    WITH incoming AS (
      -- postgres.js needs sql.array() for bytea[] and ISO strings for timestamptz[].
      SELECT * FROM unnest(${col((c) => c.jobId)}::uuid[], ${col((c) => c.attempt)}::int[], ${col((c) => c.chunk.stream)}::int2[],
                           ${col((c) => String(c.chunk.offset))}::int8[], ${db.array(col((c) => Buffer.from(c.chunk.data)))}::bytea[],
                           ${col((c) => (c.chunk.time ?? new Date()).toISOString())}::timestamptz[], ${col((c) => c.nodeId)}::text[])
               AS u(job_id, attempt, stream, byte_offset, data, logged_at, node_id)
    ), current_attempts AS (
      -- The row locks serialise appends for one job, so two of them never trim
      -- against the same stored end and overlap. In id order: no deadlocks between appends.
      SELECT id, attempt, node_id FROM jobs
      -- The node is part of the fence: a node stores output only for its own attempts.
      WHERE (id, attempt, node_id) IN (SELECT * FROM unnest(${reports.map((r) => r.attempt.jobId)}::uuid[], ${reports.map((r) => r.attempt.attempt)}::int[],
                                                            ${reports.map((r) => r.nodeId)}::text[]))
        AND state = ANY(${ACTIVE_DB_STATES}::text[])
      ORDER BY id
      FOR UPDATE
    ), stored_end AS (
      SELECT c.id AS job_id, c.attempt, c.node_id, s.stream, coalesce((
        SELECT l.byte_offset + length(l.data) FROM job_logs l
        WHERE l.job_id = c.id AND l.attempt = c.attempt AND l.stream = s.stream
        ORDER BY l.byte_offset DESC LIMIT 1), 0) AS end_offset
      FROM current_attempts c CROSS JOIN (VALUES (1::int2), (2::int2)) AS s(stream)
    ), trimmed AS (
      SELECT i.job_id, i.attempt, i.stream, greatest(i.byte_offset, e.end_offset) AS byte_offset,
             substring(i.data FROM (greatest(i.byte_offset, e.end_offset) - i.byte_offset + 1)::int) AS data,
             i.logged_at
      -- On the node too: another node's chunks for this attempt in the same call are not stored.
      FROM incoming i JOIN stored_end e USING (job_id, attempt, node_id, stream)
      WHERE i.byte_offset + length(i.data) > e.end_offset
    ), inserted AS (
      INSERT INTO job_logs (job_id, attempt, stream, byte_offset, data, logged_at)
      SELECT job_id, attempt, stream, byte_offset, data, logged_at FROM trimmed
      ON CONFLICT DO NOTHING
      RETURNING job_id, attempt, stream, byte_offset, data, logged_at
    )
    SELECT false AS is_chunk, id AS job_id, attempt, node_id, NULL::int2 AS stream, NULL::int8 AS byte_offset, NULL::bytea AS data, NULL::timestamptz AS logged_at
    FROM current_attempts
    UNION ALL
    SELECT true, job_id, attempt, NULL, stream, byte_offset, data, logged_at FROM inserted
    ORDER BY is_chunk, job_id, stream, byte_offset`;
  // By attempt: an active attempt has one node, so its chunks are that node's.
  const stored = new Map<string, LogChunk[]>();
  const nodeOf = new Map<string, string>();
  for (const r of rows) {
    const key = attemptKeyOf({ jobId: r.job_id, attempt: r.attempt });
    if (!r.is_chunk) {
      stored.set(key, stored.get(key) ?? []);
      nodeOf.set(key, r.node_id!);
    } else stored.get(key)?.push({ stream: r.stream as LogStream, offset: BigInt(r.byte_offset), data: r.data, time: r.logged_at, attempt: r.attempt });
  }
  // Each attempt's new output once, on its first report of this call.
  const seen = new Set<string>();
  return reports.map((r) => {
    const key = attemptKeyOf(r.attempt);
    const chunks = stored.get(key);
    if (!chunks || nodeOf.get(key) !== r.nodeId) return undefined;
    if (seen.has(key)) return [];
    seen.add(key);
    return chunks;
  });
}

/** The reports' chunks in offset order per attempt and stream, each trimmed to start past the ones before it. */
function withoutOverlaps(reports: FromNode<OutputReport>[]): { jobId: string; attempt: number; nodeId: string; chunk: LogChunk }[] {
  const byStream = new Map<string, { jobId: string; attempt: number; nodeId: string; chunk: LogChunk }[]>();
  for (const r of reports) {
    for (const chunk of r.chunks) {
      // Per node: another node's chunks must not trim away the real ones.
      const key = `${r.nodeId}/${attemptKeyOf(r.attempt)}/${chunk.stream}`;
      let list = byStream.get(key);
      if (!list) byStream.set(key, (list = []));
      list.push({ jobId: r.attempt.jobId, attempt: r.attempt.attempt, nodeId: r.nodeId, chunk });
    }
  }
  const out: { jobId: string; attempt: number; nodeId: string; chunk: LogChunk }[] = [];
  for (const list of byStream.values()) {
    list.sort((a, b) => Number(a.chunk.offset - b.chunk.offset));
    let end = -1;
    for (const c of list) {
      const offset = Number(c.chunk.offset);
      const chunkEnd = offset + c.chunk.data.length;
      if (chunkEnd <= end) continue;
      const skip = Math.max(0, end - offset);
      out.push(skip ? { ...c, chunk: { ...c.chunk, offset: BigInt(offset + skip), data: c.chunk.data.subarray(skip) } } : c);
      end = chunkEnd;
    }
  }
  return out;
}

/**
 * Output stored from the given offsets on, for several attempts' streams in one
 * statement (what the other replicas announced): per stream in offset order.
 */
export async function readLogsFrom(
  sql: Sql,
  from: { jobId: string; attempt: number; stream: LogStream; offset: number }[],
): Promise<{ jobId: string; chunk: LogChunk }[]> {
  if (from.length === 0) return [];
  const rows = await sql<(LogRow & { job_id: string })[]>`
    SELECT l.job_id, l.attempt, l.stream, l.byte_offset, l.data, l.logged_at
    FROM unnest(${from.map((f) => f.jobId)}::uuid[], ${from.map((f) => f.attempt)}::int[],
                ${from.map((f) => f.stream)}::int2[], ${from.map((f) => f.offset)}::int8[]) AS w(job_id, attempt, stream, from_offset)
    JOIN job_logs l ON l.job_id = w.job_id AND l.attempt = w.attempt AND l.stream = w.stream AND l.byte_offset >= w.from_offset
    ORDER BY l.job_id, l.stream, l.byte_offset`;
  return rows.map((r) => ({
    jobId: r.job_id,
    chunk: { stream: r.stream as LogStream, offset: BigInt(r.byte_offset), data: r.data, time: r.logged_at, attempt: r.attempt },
  }));
}

/** Output of one attempt in order, per stream from the given offsets. */
export async function readLogs(
  sql: Sql,
  opts: { jobId: string; attempt: number; stream?: LogStream; fromOffsets?: { stdout: number; stderr: number } },
): Promise<LogChunk[]> {
  const from = opts.fromOffsets ?? { stdout: 0, stderr: 0 };
  const rows = await sql<LogRow[]>`
    SELECT attempt, stream, byte_offset, data, logged_at FROM job_logs
    WHERE job_id = ${opts.jobId} AND attempt = ${opts.attempt}
      ${opts.stream ? sql`AND stream = ${opts.stream}` : sql``}
      AND byte_offset + length(data) > CASE stream WHEN 1 THEN ${from.stdout}::int8 ELSE ${from.stderr}::int8 END
    ORDER BY stream, byte_offset`;
  const chunks = rows.map((r): LogChunk => {
    const start = r.stream === LogStream.LOG_STREAM_STDOUT ? from.stdout : from.stderr;
    const skip = Math.max(0, start - r.byte_offset);
    return {
      stream: r.stream as LogStream,
      offset: BigInt(r.byte_offset + skip),
      data: skip ? r.data.subarray(skip) : r.data,
      time: r.logged_at,
      attempt: r.attempt,
    };
  });
  return interleaveByTime(chunks);
}

/**
 * Interleaves the two streams by time the way they were printed, while keeping
 * each stream in offset order even if the node's clock stepped back.
 */
function interleaveByTime(chunks: LogChunk[]): LogChunk[] {
  const out = chunks.filter((c) => c.stream === LogStream.LOG_STREAM_STDOUT);
  const err = chunks.filter((c) => c.stream !== LogStream.LOG_STREAM_STDOUT);
  const merged: LogChunk[] = [];
  let i = 0;
  let j = 0;
  while (i < out.length || j < err.length) {
    const takeOut = j >= err.length || (i < out.length && out[i]!.time!.getTime() <= err[j]!.time!.getTime());
    merged.push(takeOut ? out[i++]! : err[j++]!);
  }
  return merged;
}
