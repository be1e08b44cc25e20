// Job output in Postgres: one statement per batch of chunks, fenced by attempt,
// and idempotent (a resent or replayed chunk adds only bytes not yet stored).
import { LogChunk, LogStream } from '../common/gen/grid/v1/job.js';
import { ACTIVE_DB_STATES } from '../common/job-state.js';
import type { Sql } from './db/connect.js';
import type { AttemptKey } from './job-store.js';


interface LogRow {
  attempt: number;
  stream: number;
  byte_offset: number;
  data: Buffer;
  logged_at: Date;
}

/**
 * Stores a batch for the attempt and returns what was new in it, or undefined
 * when the attempt is not the job's current active one (refused). Each chunk is
 * trimmed against what is already stored for its stream, so output replayed by a
 * restarted agent from offset 0 (in chunks cut differently) adds no duplicate.
 */
export async function appendLogs(sql: Sql, key: AttemptKey, chunks: LogChunk[]): Promise<LogChunk[] | undefined> {
  const rows = await sql<(Partial<LogRow> & { current: boolean })[]>`
    WITH current_attempt AS (
      -- The row lock serialises appends for one job, so two of them never trim
      -- against the same stored end and overlap.
      SELECT 1 FROM jobs WHERE id = ${key.jobId} AND attempt = ${key.attempt} AND state = ANY(${ACTIVE_DB_STATES}) FOR UPDATE
    ), incoming AS (
      -- postgres.js needs sql.array() for bytea[] and ISO strings for timestamptz[].
      SELECT * FROM unnest(${chunks.map((c) => c.stream)}::int2[], ${chunks.map((c) => String(c.offset))}::int8[],
                           ${sql.array(chunks.map((c) => Buffer.from(c.data)))}::bytea[],
                           ${chunks.map((c) => (c.time ?? new Date()).toISOString())}::timestamptz[])
               AS u(stream, byte_offset, data, logged_at)
    ), stored_end AS (
      SELECT s.stream, coalesce((
        SELECT l.byte_offset + length(l.data) FROM job_logs l
        WHERE l.job_id = ${key.jobId} AND l.attempt = ${key.attempt} AND l.stream = s.stream
        ORDER BY l.byte_offset DESC LIMIT 1), 0) AS end_offset
      FROM (VALUES (1::int2), (2::int2)) AS s(stream)
    ), trimmed AS (
      SELECT i.stream, greatest(i.byte_offset, e.end_offset) AS byte_offset,
             substring(i.data FROM (greatest(i.byte_offset, e.end_offset) - i.byte_offset + 1)::int) AS data,
             i.logged_at
      FROM incoming i JOIN stored_end e USING (stream)
      WHERE i.byte_offset + length(i.data) > e.end_offset AND EXISTS (SELECT 1 FROM current_attempt)
    ), inserted AS (
      INSERT INTO job_logs (job_id, attempt, stream, byte_offset, data, logged_at)
      SELECT ${key.jobId}, ${key.attempt}, stream, byte_offset, data, logged_at FROM trimmed
      ON CONFLICT DO NOTHING
      RETURNING stream, byte_offset, data, logged_at
    )
    SELECT c.current, i.stream, i.byte_offset, i.data, i.logged_at
    FROM (SELECT EXISTS (SELECT 1 FROM current_attempt) AS current) c
    LEFT JOIN inserted i ON true
    ORDER BY i.stream, i.byte_offset`;
  if (!rows[0]!.current) return undefined;
  return rows
    .filter((r) => r.stream !== null && r.stream !== undefined)
    .map((r) => ({
      stream: r.stream as LogStream,
      offset: BigInt(r.byte_offset!),
      data: r.data!,
      time: r.logged_at!,
      attempt: key.attempt,
    }));
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
