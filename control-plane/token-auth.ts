// Authenticates every client call by its bearer token and checks the token's
// scope against what the method needs (api-token.ts). Tokens are looked up a
// few at a time and kept for CACHE_MS, so a busy client costs no statement per
// call; a revoke on any replica takes effect within that. Agents are not
// authenticated here: their certificate is checked by node-identity.ts.
import type { ServerMiddleware } from 'nice-grpc';
import type { Logger } from 'pino';
import { TokenScope } from '../common/gen/grid/v1/token.js';
import { permissionDenied, unauthenticated } from '../common/errors.js';
import type { Sql } from './db/connect.js';
import { parseToken, requiredScope, scopeAllows, secretMatches } from './api-token.js';
import { scopeName } from '../common/token-scope.js';
import { findTokens, touchTokens, type StoredToken } from './token-store.js';

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

const HOW =
  'send a Grid API token as the metadata "authorization: Bearer <token>" (gridctl reads it from GRID_TOKEN); ' +
  'an admin makes one with `gridctl token create`';

export function createTokenAuth(deps: { sql: Sql; log: Logger }): TokenAuth {
  const cache = new Map<string, { token: StoredToken | undefined; at: number }>();
  const pending = new Map<string, Promise<StoredToken | undefined>>();
  const used = new Set<string>();

  async function lookUp(id: string): Promise<StoredToken | undefined> {
    const cached = cache.get(id);
    if (cached && performance.now() - cached.at < CACHE_MS) return cached.token;
    let lookup = pending.get(id);
    if (!lookup) {
      lookup = findTokens(deps.sql, [id]).then(([token]) => {
        if (cache.size >= MAX_CACHED) cache.clear();
        cache.set(id, { token, at: performance.now() });
        return token;
      });
      pending.set(id, lookup);
      void lookup.finally(() => pending.delete(id)).catch(() => {});
    }
    return lookup;
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
    if (needed !== undefined) {
      const header = context.metadata.get('authorization');
      if (header === undefined) throw unauthenticated(`${call.method.path} needs an API token and none was sent: ${HOW}`);
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
          `API token "${info.name}" has scope ${scopeName(info.scope)}, and ${call.method.path} needs ${scopeName(needed)}` +
            `${needed === TokenScope.TOKEN_SCOPE_ADMIN ? '' : ' or above'}: use a token made with --scope ${scopeName(needed)}`,
        );
      }
      used.add(info.id);
    }
    return yield* call.next(call.request, context);
  };

  return {
    middleware,
    forget: (id) => cache.delete(id),
    async stop() {
      clearInterval(toucher);
      await touchTokens(deps.sql, [...used]).catch(() => {});
    },
  };
}
