// The queue deadline of a job queued again (a lost node, a hand-back, a retry):
// its whole queue timeout once more, from `from`. The timeout it was given is
// jobs.queue_timeout_ms (migration 21); a row an older replica inserted has 0
// there, and its deadline less its submit time is the same span.
import type { Sql, TransactionSql } from '../db/connect.js';
import type { Fragment } from './changed-job.js';

export function requeuedDeadline(sql: Sql | TransactionSql, from: Fragment): Fragment {
  return (sql as Sql)`(${from} + CASE WHEN jobs.queue_timeout_ms > 0 THEN jobs.queue_timeout_ms * interval '1 millisecond'
                                 ELSE jobs.queue_deadline - jobs.submitted_at END)`;
}
