// Authenticates every client call by its bearer token and checks the token's
// scope against what the method needs (api-token.ts). Tokens are looked up a
// tick's worth at a time (one statement for many) and kept for CACHE_MS, so a
// busy client costs no statement per call; a revoke on any replica takes
// effect within that, streams already open included. Agents are not
// authenticated here: their certificate is checked by node-identity.ts.
import type { ServerMiddleware } from 'nice-grpc';
import type { Logger } from 'pino';
import { TokenScope, type TokenInfo } from '../common/gen/grid/v1/token.js';
import { permissionDenied, ServerError, unauthenticated } from '../common/errors.js';
import type { Sql } from './db/connect.js';
import { parseToken, requiredScope, scopeAllows, secretMatches } from './api-token.js';
import { scopeName } from '../common/token-scope.js';
import { findTokens, touchTokens, type StoredToken } from './token-store.js';
import type { SubmitterContext } from './submitter-context.js';

/** How long a looked-up token is believed: the longest a revoke takes to reach every replica. */
export const CACHE_MS = 2000;
const MAX_CACHED = 10_000;
const TOUCH_INTERVAL_MS = 60_000;

export interface TokenAuth {
  middleware: ServerMiddleware;
  /** Forgets what it knows of a token: a revoke on this replica takes effect at once. */
  forget(id: string): void;
  stop(): Promise<void>;
}

const HOW = 'send a Grid API token as the metadata "authorization: Bearer <token>"; an admin makes one with TokenService.CreateToken';

export function createTokenAuth(deps: { sql: Sql; log: Logger }): TokenAuth {
  // Known and unknown ids alike, oldest first (a Map keeps insertion order): a
  // flood of made-up ids evicts made-up ids, not the cache's real tokens alone.
  const cache = new Map<string, { token: StoredToken | undefined; at: number }>();
  // Bumped by forget(): a lookup that was in flight across a revoke is not cached.
  const generations = new Map<string, number>();
  const used = new Set<string>();
  // Lookups of one tick go to PostgreSQL as one statement.
  let batch: Map<string, { resolve: (t: StoredToken | undefined) => void; reject: (e: unknown) => void }[]> | undefined;

  function remember(id: string, token: StoredToken | undefined): void {
    cache.delete(id);
    cache.set(id, { token, at: performance.now() });
    while (cache.size > MAX_CACHED) cache.delete(cache.keys().next().value!);
  }

  function flush(ids: Map<string, { resolve: (t: StoredToken | undefined) => void; reject: (e: unknown) => void }[]>): void {
    const asked = new Map([...ids.keys()].map((id) => [id, generations.get(id) ?? 0]));
    findTokens(deps.sql, [...ids.keys()]).then(
      (found) => {
        const byId = new Map(found.map((t) => [t.info.id, t]));
        for (const [id, waiters] of ids) {
          const token = byId.get(id);
          if ((generations.get(id) ?? 0) === asked.get(id)) remember(id, token);
          for (const w of waiters) w.resolve(token);
        }
      },
      (err) => {
        for (const waiters of ids.values()) for (const w of waiters) w.reject(err);
      },
    );
  }

  function lookUp(id: string): Promise<StoredToken | undefined> {
    const cached = cache.get(id);
    if (cached && performance.now() - cached.at < CACHE_MS) return Promise.resolve(cached.token);
    return new Promise((resolve, reject) => {
      if (!batch) {
        batch = new Map();
        const taken = batch;
        setImmediate(() => {
          batch = undefined;
          flush(taken);
        });
      }
      const waiters = batch.get(id) ?? [];
      waiters.push({ resolve, reject });
      batch.set(id, waiters);
    });
  }

  /** The token the header carries, if it is valid now and has the scope; else the refusal. */
  async function authorise(header: string | undefined, path: string, needed: TokenScope): Promise<TokenInfo> {
    if (header === undefined) throw unauthenticated(`${path} needs an API token and none was sent: ${HOW}`);
    const presented = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
    const parsed = presented === undefined ? undefined : parseToken(presented);
    if (!parsed) throw unauthenticated(`the authorization metadata is not "Bearer grid_…": ${HOW}`);
    const token = await lookUp(parsed.id);
    if (!token || !secretMatches(parsed.secretSha256, token.secretSha256)) throw unauthenticated(`this API token is not known here: ${HOW}`);
    const { info } = token;
    if (info.revokedAt) throw unauthenticated(`API token "${info.name}" (${info.id}) was revoked at ${info.revokedAt.toISOString()}: ask an admin for a new one`);
    if (info.expiresAt && info.expiresAt.getTime() <= Date.now()) {
      throw unauthenticated(`API token "${info.name}" (${info.id}) expired at ${info.expiresAt.toISOString()}: ask an admin for a new one`);
    }
    if (!scopeAllows(info.scope, needed)) {
      throw permissionDenied(
        `API token "${info.name}" has scope ${scopeName(info.scope)}, and ${path} needs ${scopeName(needed)}` +
          `${needed === TokenScope.TOKEN_SCOPE_ADMIN ? '' : ' or above'}: use a token made with --scope ${scopeName(needed)}`,
      );
    }
    used.add(info.id);
    return info;
  }

  // Last use, to within a minute: one statement for every token used meanwhile.
  const toucher = setInterval(() => {
    const ids = [...used];
    used.clear();
    touchTokens(deps.sql, ids).catch((err) => deps.log.warn({ err }, 'cannot record when tokens were last used'));
  }, TOUCH_INTERVAL_MS);
  toucher.unref();

  const middleware: ServerMiddleware = async function* authenticate(call, context) {
    const needed = requiredScope(call.method.path);
    if (needed === undefined) return yield* call.next(call.request, context);
    const header = context.metadata.get('authorization');
    const admitted = await authorise(header, call.method.path, needed);
    const withSubmitter: SubmitterContext = { submitter: admitted.id };
    if (!call.method.responseStream) return yield* call.next(call.request, { ...context, ...withSubmitter });
    // A stream (a watch, logs followed) outlives one check: the token is checked
    // again as often as the cache forgets it, and a revoked or expired one ends it.
    const stop = new AbortController();
    const abort = () => stop.abort();
    context.signal.addEventListener('abort', abort);
    let refused: unknown;
    const recheck = setInterval(() => {
      authorise(header, call.method.path, needed).catch((err) => {
        // Only a verdict on the token ends the stream; a database hiccup does not.
        if (err instanceof ServerError) {
          refused = err;
          stop.abort();
        }
      });
    }, CACHE_MS);
    try {
      return yield* call.next(call.request, { ...context, ...withSubmitter, signal: stop.signal });
    } catch (err) {
      throw refused ?? err;
    } finally {
      clearInterval(recheck);
      context.signal.removeEventListener('abort', abort);
      if (refused) throw refused;
    }
  };

  return {
    middleware,
    forget(id) {
      cache.delete(id);
      generations.set(id, (generations.get(id) ?? 0) + 1);
    },
    async stop() {
      clearInterval(toucher);
      await touchTokens(deps.sql, [...used]).catch(() => {});
    },
  };
}
