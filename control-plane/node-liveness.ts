// Decides when a node is gone, telling two deaths apart:
// - silent: the stream is open but nothing arrived for the heartbeat timeout (hung
//   host, partition, half-open TCP): the node is LOST at once;
// - disconnected: the stream ended while the node was still heard from (agent
//   crashed or restarted): its attempts are left alone for the reconnect grace,
//   because a restarted agent takes its containers up again.
// Liveness lives in memory; Postgres gets it in one batched write per interval.
// Every verdict is a compare-and-set on the node's generation, so a node that
// reconnected in the meantime (here or on another replica) is never judged.
import type { Logger } from 'pino';
import type { Sql } from './db/connect.js';
import type { JobTransitions } from './job-transitions.js';
import type { NodeRegistry } from './node-registry.js';
import type { NodeSession } from './node-session.js';
import { nodesPastGrace, recordNodeDisconnected, recordNodesSeen, type DrainMark } from './node-store.js';
import { createDatabaseHealth } from './database-health.js';
import { silentSessions } from './silence.js';

export interface NodeLivenessOptions {
  sql: Sql;
  registry: NodeRegistry;
  transitions: JobTransitions;
  log: Logger;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  reconnectGraceMs: number;
  persistIntervalMs: number;
  /** What the heartbeat persist read of a node's drain, for its owner (node-drain.ts) to apply. */
  drainRead?: (nodeId: string, drain: DrainMark) => void;
}

export interface NodeLiveness {
  /** Called when a session's stream has ended, for whatever reason. */
  streamEnded(session: NodeSession): Promise<void>;
  stop(): void;
}

export function startNodeLiveness(options: NodeLivenessOptions): NodeLiveness {
  const { sql, registry, log } = options;

  async function declareLost(nodeId: string, generation: number, why: string): Promise<void> {
    try {
      await options.transitions.loseNode(nodeId, generation, why);
    } catch (err) {
      // The sweep below judges the node again once Postgres answers.
      log.warn({ err, node: nodeId }, 'cannot record a lost node yet');
    }
  }

  /** Nothing more is decided for the session, and its stream is ended (its agent reconnects, if it can). */
  function dropJudged(session: NodeSession): void {
    session.judge();
    registry.remove(session);
    session.close();
  }

  const checkEveryMs = Math.max(50, Math.min(250, options.heartbeatTimeoutMs / 4));
  let lastCheck = performance.now();
  // When this process last came out of a stall (performance.now()).
  let lastStallEnd = -Infinity;
  const check = setInterval(() => {
    const now = performance.now();
    const late = now - lastCheck - checkEveryMs;
    lastCheck = now;
    // This process was stalled (a burst of work held the event loop): the
    // heartbeats that came meanwhile are still unread in the sockets, and timers
    // run before them. Silence seen now may be this process's own, so judge on
    // the next check, after they are read.
    if (late > options.heartbeatIntervalMs / 2) {
      lastStallEnd = now;
      log.warn({ stalled_ms: Math.round(late) }, 'control plane was stalled; not judging silence until its streams are read');
      return;
    }
    for (const session of silentSessions(registry.all(), Date.now(), options.heartbeatTimeoutMs)) {
      dropJudged(session);
      void declareLost(session.nodeId, session.generation, `silent for ${Date.now() - session.lastSeenAt.getTime()} ms`);
    }
  }, checkEveryMs);

  const health = createDatabaseHealth({
    graceMs: options.reconnectGraceMs,
    slowMs: Math.max(1000, 2 * options.persistIntervalMs),
    now: () => performance.now(),
  });
  const persist = setInterval(() => {
    const live = registry.live();
    if (live.length === 0) return;
    const sent = performance.now();
    recordNodesSeen(sql, live.map((s) => ({ nodeId: s.nodeId, generation: s.generation }))).then(
      (seen) => {
        health.observe(true, performance.now() - sent);
        for (const session of live) {
          const row = seen.get(session.nodeId);
          if (row) options.drainRead?.(session.nodeId, row);
          if (row || session.judged || registry.get(session.nodeId) !== session) continue;
          // Judged elsewhere (its attempts are no longer its own): the agent must
          // reconnect, to be reconciled as a new stream, not be given more work.
          log.warn({ node: session.nodeId, generation: session.generation }, 'node is no longer this stream\'s in the database; closing the stream');
          dropJudged(session);
        }
      },
      (err) => {
        health.observe(false, performance.now() - sent);
        log.warn({ err }, 'cannot record heartbeats');
      },
    );
  }, options.persistIntervalMs);

  // Nodes nobody has heard from past the grace: disconnected and not back, or
  // served by a control plane that died. A fresh control plane, or one that has
  // just got its database back, waits one grace before judging anyone
  // (database-health.ts), so a restart or an outage never turns into a storm of
  // lost nodes.
  let sweeping = false;
  const sweep = setInterval(async () => {
    if (sweeping) return;
    sweeping = true;
    const sent = performance.now();
    try {
      const past = await nodesPastGrace(sql, options.reconnectGraceMs);
      health.observe(true, performance.now() - sent);
      for (const node of past) {
        if (!health.mayJudge()) break;
        const local = registry.get(node.id);
        if (local && local.generation === node.generation) continue;
        await declareLost(node.id, node.generation, 'not back within the reconnect grace');
      }
    } catch (err) {
      health.observe(false, performance.now() - sent);
      log.warn({ err }, 'cannot sweep for lost nodes');
    } finally {
      sweeping = false;
    }
  }, 1000);

  return {
    async streamEnded(session) {
      if (session.judged || !session.ready) return;
      const silentFor = Date.now() - session.lastSeenAt.getTime();
      // A stream that broke after the node had already gone quiet is a hung
      // host found by keepalive, not a restart: no grace for it. Unless this
      // process was stalled meanwhile: then the silence was its own (the
      // heartbeats waited unread), and the break most likely the agent's
      // keepalive giving up on it; the node gets the reconnect grace.
      const stalledMeanwhile = performance.now() - lastStallEnd < silentFor + options.heartbeatTimeoutMs;
      if (silentFor > 2 * options.heartbeatIntervalMs && !stalledMeanwhile) {
        session.judge();
        await declareLost(session.nodeId, session.generation, `stream ended after ${silentFor} ms of silence`);
        return;
      }
      await recordNodeDisconnected(sql, session.nodeId, session.generation).catch((err) =>
        log.warn({ err, node: session.nodeId }, 'cannot record a disconnect'),
      );
    },
    stop() {
      clearInterval(check);
      clearInterval(persist);
      clearInterval(sweep);
    },
  };
}
