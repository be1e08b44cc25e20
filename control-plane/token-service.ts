// TokenService: creating, listing and revoking API tokens (admin scope, see
// token-auth.ts). Secrets are returned once, at creation, and never stored.
import type { TokenServiceImplementation } from '../common/gen/grid/v1/token.js';
import { TokenScope } from '../common/gen/grid/v1/token.js';
import { invalidArgument, notFound } from '../common/errors.js';
import { durationToMs, formatDurationMs } from '../common/units.js';
import type { Sql } from './db/connect.js';
import type { Logger } from 'pino';
import { scopeName } from '../common/token-scope.js';
import type { TokenAuth } from './token-auth.js';
import { createToken, listTokens, revokeToken } from './token-store.js';

const MIN_EXPIRY_MS = 60_000;
const MAX_EXPIRY_MS = 10 * 365 * 24 * 3600_000;
const TOKEN_ID = /^[0-9a-f]{12}$/;

export function createTokenService(deps: { sql: Sql; auth: TokenAuth | undefined; log: Logger }): TokenServiceImplementation {
  return {
    async createToken(request) {
      const name = request.name.trim();
      if (name.length < 1 || name.length > 128 || name.includes('\0')) throw invalidArgument('name must be 1-128 characters');
      const scope = request.scope;
      if (![TokenScope.TOKEN_SCOPE_READ, TokenScope.TOKEN_SCOPE_SUBMIT, TokenScope.TOKEN_SCOPE_ADMIN].includes(scope)) {
        throw invalidArgument(`scope is ${scope}: give read (1), submit (2) or admin (3)`);
      }
      let expiresInMs: number | undefined;
      if (request.expiresIn) {
        expiresInMs = durationToMs(request.expiresIn);
        if (!(expiresInMs >= MIN_EXPIRY_MS && expiresInMs <= MAX_EXPIRY_MS)) {
          throw invalidArgument(`expires_in is ${formatDurationMs(expiresInMs)}: must be between 1 minute and 10 years`);
        }
      }
      const created = await createToken(deps.sql, name, scope, expiresInMs);
      deps.log.info({ token_id: created.info.id, name, scope: scopeName(scope) }, 'API token created');
      return created;
    },
    async listTokens() {
      return { tokens: await listTokens(deps.sql) };
    },
    async revokeToken(request) {
      if (!TOKEN_ID.test(request.tokenId)) throw invalidArgument(`token_id "${request.tokenId.slice(0, 64)}" is not a token id (12 hex digits)`);
      const info = await revokeToken(deps.sql, request.tokenId);
      if (!info) throw notFound(`there is no token ${request.tokenId}`);
      deps.auth?.forget(info.id);
      deps.log.info({ token_id: info.id, name: info.name }, 'API token revoked');
      return { info };
    },
  };
}
