// Versioned schema migrations, applied in order on control-plane start and by
// `grid-control-plane migrate`. Append new versions; never edit an applied one.
// Kept as TypeScript strings rather than .sql files so a bundled single-file
// control plane still carries them.
import { ALL_STATES, stateToDb, TERMINAL_STATES, ACTIVE_STATES } from '../../common/job-state.js';
import { EndReason } from '../../common/gen/grid/v1/job.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const list = (values: string[]) => values.map((v) => `'${v}'`).join(', ');
const states = list(ALL_STATES.map(stateToDb));
const terminal = list(TERMINAL_STATES.map(stateToDb));
const active = list(ACTIVE_STATES.map(stateToDb));
const reasons = list(
  Object.keys(EndReason)
    .filter((k) => k.startsWith('END_REASON_') && k !== 'END_REASON_UNSPECIFIED')
    .map((k) => k.slice('END_REASON_'.length)),
);

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'jobs, logs and nodes',
    sql: `
      CREATE TABLE jobs (
        id            uuid PRIMARY KEY,            -- UUIDv7: time-ordered, so id order is submit order
        state         text NOT NULL CHECK (state IN (${states})),
        end_reason    text CHECK (end_reason IN (${reasons})),
        spec          bytea NOT NULL,              -- grid.v1.JobSpec (binary protobuf), defaults filled in
        task          bytea NOT NULL,              -- grid.v1.Task: what a node runs
        image         text NOT NULL,
        cpus          double precision NOT NULL,
        memory_bytes  bigint NOT NULL,
        request_id    text UNIQUE,                 -- client idempotency key
        version       integer NOT NULL DEFAULT 1,  -- bumped by every update: orders events of one job
        attempt       integer NOT NULL DEFAULT 0,  -- fencing token of the current attempt
        max_attempts  integer NOT NULL,
        node_id       text,
        exit_code     integer,
        message       text NOT NULL DEFAULT '',
        submitted_at  timestamptz NOT NULL DEFAULT now(),
        assigned_at   timestamptz,
        started_at    timestamptz,
        ended_at      timestamptz,
        -- A job is terminal exactly when it has a reason.
        CHECK ((state IN (${terminal})) = (end_reason IS NOT NULL))
      );
      CREATE INDEX jobs_queue ON jobs (id) WHERE state = 'QUEUED';
      CREATE INDEX jobs_by_state ON jobs (state, id DESC);
      CREATE INDEX jobs_active_by_node ON jobs (node_id) WHERE state IN (${active});

      CREATE TABLE job_logs (
        job_id       uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        attempt      integer NOT NULL,
        stream       smallint NOT NULL CHECK (stream IN (1, 2)),  -- grid.v1.LogStream
        byte_offset  bigint NOT NULL,
        data         bytea NOT NULL,
        logged_at    timestamptz NOT NULL,
        PRIMARY KEY (job_id, attempt, stream, byte_offset)
      );

      CREATE TABLE nodes (
        id             text PRIMARY KEY,
        name           text NOT NULL,
        state          text NOT NULL CHECK (state IN ('READY', 'DISCONNECTED', 'LOST')),
        slots          integer NOT NULL,
        cpus           double precision NOT NULL,
        memory_bytes   bigint NOT NULL,
        labels         jsonb NOT NULL DEFAULT '{}',
        agent_version  text NOT NULL DEFAULT '',
        connected_at   timestamptz,
        last_seen_at   timestamptz
      );

      -- Wakes every control plane's dispatcher when a job becomes claimable, so a
      -- job submitted through one replica is dispatched by whichever has free nodes.
      CREATE FUNCTION grid_notify_job_queued() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('grid_job_queued', '');
        RETURN NULL;
      END $$;
      CREATE TRIGGER jobs_notify_queued AFTER INSERT OR UPDATE OF state ON jobs
        FOR EACH ROW WHEN (NEW.state = 'QUEUED') EXECUTE FUNCTION grid_notify_job_queued();
    `,
  },
  {
    version: 2,
    name: 'node generations and attempt history',
    sql: `
      -- Bumped at every connect: a node judged lost is only the connection that
      -- was judged, never a newer one (the CAS key of liveness decisions).
      ALTER TABLE nodes ADD COLUMN generation bigint NOT NULL DEFAULT 0;

      CREATE TABLE job_attempts (
        job_id       uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        attempt      integer NOT NULL,
        node_id      text NOT NULL,
        assigned_at  timestamptz NOT NULL,
        started_at   timestamptz,
        ended_at     timestamptz,
        outcome      text CHECK (outcome IN (${reasons})),  -- NODE_LOST for a lost attempt
        exit_code    integer,
        PRIMARY KEY (job_id, attempt)
      );
    `,
  },
  {
    version: 3,
    name: 'deadlines: queue timeout, run-timeout backstop, cancel grace',
    sql: `
      ALTER TABLE jobs
        ADD COLUMN queue_deadline timestamptz,     -- QUEUED past this ends QUEUE_TIMEOUT
        ADD COLUMN timeout_ms bigint NOT NULL DEFAULT 0,
        ADD COLUMN stop_grace_ms integer NOT NULL DEFAULT 10000,
        ADD COLUMN cancel_grace_ms integer,        -- set by a cancel; delivered again on reconnect
        ADD COLUMN backstop_at timestamptz;        -- active past this without a result: ended by the control plane
      CREATE INDEX jobs_queue_deadline ON jobs (queue_deadline) WHERE state = 'QUEUED';
      CREATE INDEX jobs_backstop ON jobs (backstop_at) WHERE state IN (${active});
    `,
  },
  {
    version: 4,
    name: 'output totals and cap',
    sql: `
      ALTER TABLE jobs
        ADD COLUMN output_cap_bytes bigint NOT NULL DEFAULT 16777216,
        ADD COLUMN stdout_bytes bigint,   -- written by the process, kept or not; set at the end
        ADD COLUMN stderr_bytes bigint;
    `,
  },
  {
    version: 5,
    name: 'blobs and output files',
    sql: `
      -- Blob storage in Postgres, chunked, so every control plane sees the same data.
      CREATE TABLE blob_chunks (
        blob_key     text NOT NULL,
        byte_offset  bigint NOT NULL,
        data         bytea NOT NULL,
        PRIMARY KEY (blob_key, byte_offset)
      );
      CREATE TABLE job_output_files (
        job_id   uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        attempt  integer NOT NULL,
        path     text NOT NULL,
        size     bigint NOT NULL,
        PRIMARY KEY (job_id, attempt, path)
      );
      ALTER TABLE jobs ADD COLUMN output_files_error text;
    `,
  },
  {
    version: 6,
    name: 'job changes and output announced to every replica',
    sql: `
      -- Every replica learns what the others commit: each statement that changes
      -- jobs or adds output sends one notification per 64 rows on grid_events,
      -- naming the replica that made it (its grid.replica setting, so a replica
      -- can skip its own). Readers fetch what they need; the payload stays small
      -- (NOTIFY allows 8000 bytes).
      CREATE FUNCTION grid_notify_jobs_changed() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('grid_events', json_build_object(
                  'o', current_setting('grid.replica', true),
                  'j', json_agg(json_build_array(id, version, state)))::text)
        FROM (SELECT id, version, state, (row_number() OVER () - 1) / 64 AS part FROM changed_jobs) c
        GROUP BY part;
        RETURN NULL;
      END $$;
      CREATE TRIGGER jobs_notify_changed AFTER UPDATE ON jobs
        REFERENCING NEW TABLE AS changed_jobs FOR EACH STATEMENT EXECUTE FUNCTION grid_notify_jobs_changed();

      CREATE FUNCTION grid_notify_output_added() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('grid_events', json_build_object(
                  'o', current_setting('grid.replica', true),
                  'l', json_agg(json_build_array(job_id, attempt, stream, from_offset)))::text)
        FROM (SELECT job_id, attempt, stream, min(byte_offset) AS from_offset,
                     (row_number() OVER () - 1) / 64 AS part
              FROM added_logs GROUP BY job_id, attempt, stream) c
        GROUP BY part;
        RETURN NULL;
      END $$;
      CREATE TRIGGER job_logs_notify_added AFTER INSERT ON job_logs
        REFERENCING NEW TABLE AS added_logs FOR EACH STATEMENT EXECUTE FUNCTION grid_notify_output_added();
    `,
  },
  {
    version: 7,
    name: 'queue depth kept by triggers',
    sql: `
      -- How many jobs are QUEUED, kept up to date by triggers, so that admitting
      -- a submission reads 16 rows instead of counting the queue (which cost
      -- 1.4 ms a submit at 20,000 queued). Each statement adds its change to the
      -- shard of its backend: concurrent writers rarely share a row, and one
      -- transaction only ever holds one shard (no deadlocks between shards).
      CREATE TABLE queue_depth (shard smallint PRIMARY KEY, queued bigint NOT NULL);

      CREATE FUNCTION grid_add_queue_depth(delta bigint) RETURNS void LANGUAGE plpgsql AS $$
      BEGIN
        IF delta <> 0 THEN
          UPDATE queue_depth SET queued = queued + delta WHERE shard = pg_backend_pid() % 16;
        END IF;
      END $$;
      CREATE FUNCTION grid_count_queued_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM grid_add_queue_depth((SELECT count(*) FROM new_jobs WHERE state = 'QUEUED'));
        RETURN NULL;
      END $$;
      CREATE FUNCTION grid_count_queued_updated() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM grid_add_queue_depth((SELECT count(*) FROM new_jobs WHERE state = 'QUEUED')
                                   - (SELECT count(*) FROM old_jobs WHERE state = 'QUEUED'));
        RETURN NULL;
      END $$;
      CREATE FUNCTION grid_count_queued_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM grid_add_queue_depth(-(SELECT count(*) FROM old_jobs WHERE state = 'QUEUED'));
        RETURN NULL;
      END $$;
      CREATE TRIGGER jobs_count_queued_inserted AFTER INSERT ON jobs
        REFERENCING NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION grid_count_queued_inserted();
      CREATE TRIGGER jobs_count_queued_updated AFTER UPDATE ON jobs
        REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION grid_count_queued_updated();
      CREATE TRIGGER jobs_count_queued_deleted AFTER DELETE ON jobs
        REFERENCING OLD TABLE AS old_jobs FOR EACH STATEMENT EXECUTE FUNCTION grid_count_queued_deleted();
      -- Counted once the triggers exist: creating them locked out writers until this commits.
      INSERT INTO queue_depth SELECT s, 0 FROM generate_series(0, 15) AS s;
      UPDATE queue_depth SET queued = (SELECT count(*) FROM jobs WHERE state = 'QUEUED') WHERE shard = 0;
    `,
  },
  {
    version: 8,
    name: 'one queued-work notification per statement',
    sql: `
      -- Migration 1 woke the dispatchers once per queued row: a group commit of
      -- 1,000 submits ran the trigger 1,000 times for one (deduplicated) NOTIFY.
      -- Once per statement that queued anything is the same signal.
      DROP TRIGGER jobs_notify_queued ON jobs;
      CREATE OR REPLACE FUNCTION grid_notify_job_queued() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF EXISTS (SELECT 1 FROM queued_jobs WHERE state = 'QUEUED') THEN
          PERFORM pg_notify('grid_job_queued', '');
        END IF;
        RETURN NULL;
      END $$;
      CREATE TRIGGER jobs_notify_queued_inserted AFTER INSERT ON jobs
        REFERENCING NEW TABLE AS queued_jobs FOR EACH STATEMENT EXECUTE FUNCTION grid_notify_job_queued();
      CREATE TRIGGER jobs_notify_queued_updated AFTER UPDATE ON jobs
        REFERENCING NEW TABLE AS queued_jobs FOR EACH STATEMENT EXECUTE FUNCTION grid_notify_job_queued();
    `,
  },
  {
    version: 9,
    name: 'the agent process behind a node stream',
    sql: `
      -- Hello.agent_instance of the node's latest stream: a reconnect of that same
      -- process takes the node over at once, even while its old stream still looks
      -- live (a control plane that died, or a connection that broke in a stall).
      ALTER TABLE nodes ADD COLUMN agent_instance text NOT NULL DEFAULT '';
    `,
  },
  {
    version: 10,
    name: 'withdrawn assignments spend no attempt; a queued-work notification only for newly queued rows',
    sql: `
      -- An assignment committed but never sent (its node's stream ended while the
      -- claim was in flight) is queued again without counting against
      -- max_attempts: its number stays used, as a fencing token, and this says
      -- how many such numbers the job has.
      ALTER TABLE jobs ADD COLUMN withdrawn_attempts int NOT NULL DEFAULT 0;
      -- Migration 8 notified for any UPDATE that left a row QUEUED, so writing a
      -- queued job's waiting message woke every dispatcher for nothing new.
      CREATE OR REPLACE FUNCTION grid_notify_job_queued_updated() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF EXISTS (SELECT 1 FROM queued_jobs n JOIN unqueued_jobs o USING (id)
                   WHERE n.state = 'QUEUED' AND o.state <> 'QUEUED') THEN
          PERFORM pg_notify('grid_job_queued', '');
        END IF;
        RETURN NULL;
      END $$;
      DROP TRIGGER jobs_notify_queued_updated ON jobs;
      CREATE TRIGGER jobs_notify_queued_updated AFTER UPDATE ON jobs
        REFERENCING NEW TABLE AS queued_jobs OLD TABLE AS unqueued_jobs
        FOR EACH STATEMENT EXECUTE FUNCTION grid_notify_job_queued_updated();
    `,
  },
  {
    version: 11,
    name: 'queued jobs no connected node can hold, counted apart',
    sql: `
      -- A queued job that fits no READY node (noted by the dispatcher with why it
      -- waits, sql/note-waiting.ts) is passed over by every claim; counted apart,
      -- it no longer stops a submit from being placed at once on a node with
      -- room (sql/insert-jobs.ts), which it could never have used.
      ALTER TABLE jobs ADD COLUMN unfit boolean NOT NULL DEFAULT false;
      ALTER TABLE queue_depth ADD COLUMN unfit bigint NOT NULL DEFAULT 0;
      CREATE FUNCTION grid_add_queue_counts(queued bigint, unfit bigint) RETURNS void LANGUAGE plpgsql AS $$
      BEGIN
        IF queued <> 0 OR unfit <> 0 THEN
          UPDATE queue_depth SET queued = queue_depth.queued + grid_add_queue_counts.queued,
                                 unfit = queue_depth.unfit + grid_add_queue_counts.unfit
          WHERE shard = pg_backend_pid() % 16;
        END IF;
      END $$;
      CREATE OR REPLACE FUNCTION grid_count_queued_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM grid_add_queue_counts(count(*) FILTER (WHERE state = 'QUEUED'), count(*) FILTER (WHERE state = 'QUEUED' AND unfit))
        FROM new_jobs;
        RETURN NULL;
      END $$;
      CREATE OR REPLACE FUNCTION grid_count_queued_updated() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM grid_add_queue_counts(n.queued - o.queued, n.unfit - o.unfit)
        FROM (SELECT count(*) FILTER (WHERE state = 'QUEUED') AS queued, count(*) FILTER (WHERE state = 'QUEUED' AND unfit) AS unfit FROM new_jobs) n,
             (SELECT count(*) FILTER (WHERE state = 'QUEUED') AS queued, count(*) FILTER (WHERE state = 'QUEUED' AND unfit) AS unfit FROM old_jobs) o;
        RETURN NULL;
      END $$;
      CREATE OR REPLACE FUNCTION grid_count_queued_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM grid_add_queue_counts(-count(*) FILTER (WHERE state = 'QUEUED'), -count(*) FILTER (WHERE state = 'QUEUED' AND unfit))
        FROM old_jobs;
        RETURN NULL;
      END $$;
      DROP FUNCTION grid_add_queue_depth(bigint);
    `,
  },
  {
    version: 12,
    name: 'queued jobs marked unfit, indexed',
    sql: `
      -- A connecting node unmarks the marked jobs it can hold (sql/note-waiting.ts):
      -- usually none, read without scanning the queue.
      CREATE INDEX jobs_queued_unfit ON jobs (id) WHERE state = 'QUEUED' AND unfit;
    `,
  },
  {
    version: 13,
    name: 'API tokens, stored as hashes',
    sql: `
      -- A token is "grid_<id>_<secret>"; only the secret's SHA-256 is kept (see api-token.ts).
      CREATE TABLE api_tokens (
        id text PRIMARY KEY,
        name text NOT NULL,
        scope text NOT NULL CHECK (scope IN ('READ', 'SUBMIT', 'ADMIN')),
        secret_sha256 bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz,
        revoked_at timestamptz,
        last_used_at timestamptz
      );
    `,
  },
  {
    version: 14,
    name: 'secret env values, sealed',
    sql: `
      -- spec.secret_env's values, sealed with the control plane's key (secret-box.ts);
      -- the spec keeps only their names.
      ALTER TABLE jobs ADD COLUMN secret_env bytea;
    `,
  },
  {
    version: 15,
    name: 'short job ids, found by prefix',
    sql: `
      -- A job's short id is its UUID's random tail (common/short-id.ts): a prefix is an index range.
      CREATE INDEX jobs_short_id ON jobs ((right(id::text, 12)) text_pattern_ops);
    `,
  },
  {
    version: 16,
    name: 'nodes drained by an operator',
    sql: `
      -- Set by DrainNode, cleared by UndrainNode (control-plane/node-drain.ts): such a node is given no new job.
      ALTER TABLE nodes ADD COLUMN drain_requested_at timestamptz;
    `,
  },
  {
    version: 17,
    name: 'drain deadlines, and attempts handed back',
    sql: `
      -- Set by DrainNode with a deadline, cleared by UndrainNode (control-plane/node-drain.ts):
      -- once it passes, what still runs on the node is stopped and handed back.
      ALTER TABLE nodes ADD COLUMN drain_deadline_at timestamptz;
      -- A handed-back attempt (sql/hand-back-attempts.ts) is in the history with that outcome; its job is
      -- queued again and, as with a withdrawn one, the attempt is counted in withdrawn_attempts.
      ALTER TABLE job_attempts DROP CONSTRAINT job_attempts_outcome_check;
      ALTER TABLE job_attempts ADD CONSTRAINT job_attempts_outcome_check CHECK (outcome IN (${reasons}, 'HANDED_BACK'));
    `,
  },
  {
    version: 18,
    name: 'queue order by priority with ageing',
    sql: `
      -- A job's place in the queue (common/queue-order.ts): its submit time less its priority's
      -- worth of waiting. The default is a priority-0 job's, for rows an older replica inserts.
      ALTER TABLE jobs ADD COLUMN queue_key timestamptz DEFAULT now();
      UPDATE jobs SET queue_key = submitted_at;
      ALTER TABLE jobs ALTER COLUMN queue_key SET NOT NULL;
      CREATE INDEX jobs_queue_order ON jobs (queue_key, id) WHERE state = 'QUEUED';
      -- It replaces the claim's old index on id alone (nothing else read it): one index per
      -- queued row to maintain, not two, on every submit and claim.
      DROP INDEX jobs_queue;
    `,
  },
  {
    version: 19,
    name: 'placement by node labels',
    sql: `
      -- A job's label tests (common/label-constraints.ts), as sql/label-match.ts writes and reads
      -- them: a JSON array of {"key", "op": "=" or "!=", "value"}; NULL when it has none, so that
      -- the claim's test of a job without any is one IS NULL.
      ALTER TABLE jobs ADD COLUMN constraints jsonb, ADD COLUMN affinities jsonb;
    `,
  },
  {
    version: 20,
    name: 'who submitted a job',
    sql: `
      -- The API token a job was submitted with ('' with no token auth): the unit of the
      -- per-submitter cap on running jobs (claim-jobs.ts). No index: the cap counts the
      -- active jobs (jobs_active_by_node's rows), and the queue is walked in its own order.
      ALTER TABLE jobs ADD COLUMN submitter text NOT NULL DEFAULT '';
    `,
  },
  {
    version: 21,
    name: 'retries on failure, and jobs that start no earlier than a time',
    sql: `
      -- spec.retries and its back-off (common/retry-policy.ts), and how many retries were
      -- taken: apart from max_attempts, the budget for lost nodes (sql/lose-attempts.ts).
      ALTER TABLE jobs ADD COLUMN retries int NOT NULL DEFAULT 0,
                       ADD COLUMN retries_used int NOT NULL DEFAULT 0,
                       ADD COLUMN retry_backoff_ms int NOT NULL DEFAULT 1000,
      -- A queued job is not claimed before this (spec.not_before, or a retry's back-off).
                       ADD COLUMN not_before timestamptz,
      -- The queue timeout the job was given: a retry has all of it again from when it is due.
                       ADD COLUMN queue_timeout_ms int8 NOT NULL DEFAULT 0;
      UPDATE jobs SET queue_timeout_ms = (extract(epoch FROM queue_deadline - submitted_at) * 1000)::int8
      WHERE state IN ('QUEUED', 'ASSIGNED', 'RUNNING', 'CANCELLING');
      -- When the next of them is due: the dispatcher wakes then (claim-jobs.ts).
      CREATE INDEX jobs_not_before ON jobs (not_before) WHERE state = 'QUEUED' AND not_before IS NOT NULL;
    `,
  },
  {
    version: 22,
    name: 'periodic jobs',
    sql: `
      -- A job spec submitted at every tick of a cron schedule (cron-firer.ts). A replica
      -- fires a due schedule only while it holds its lease (lease_by, lease_until), so
      -- one replica decides each tick; one that dies holding it loses it at lease_until,
      -- and another fires the tick again: the tick's request id (jobs.request_id) makes
      -- that the same job, never a second.
      CREATE TABLE cron_schedules (
        name          text PRIMARY KEY,
        schedule      text NOT NULL,
        overlap       text NOT NULL CHECK (overlap IN ('SKIP', 'ALLOW', 'CANCEL_PREVIOUS')),
        paused        boolean NOT NULL DEFAULT false,
        spec          bytea NOT NULL,
        submitter     text NOT NULL DEFAULT '',
        next_fire_at  timestamptz,
        last_fired_at timestamptz,
        last_job_id   uuid,
        lease_by      text,
        lease_until   timestamptz,
        created_at    timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX cron_schedules_due ON cron_schedules (next_fire_at) WHERE NOT paused;
      ALTER TABLE jobs ADD COLUMN cron_name text, ADD COLUMN cron_tick timestamptz;
    `,
  },
  {
    version: 23,
    name: 'the active jobs of a periodic schedule',
    sql: `
      -- What a firing's overlap policy looks at (sql/fire-crons.ts activeCronJobs): every job of the
      -- schedule still queued or on a node, not only the last one it recorded, which a replica that died
      -- between submit and advance never recorded.
      CREATE INDEX jobs_cron_active ON jobs (cron_name) WHERE cron_name IS NOT NULL AND state IN ('QUEUED', 'ASSIGNED', 'RUNNING', 'CANCELLING');
    `,
  },
];
