// The api_tokens table: tokens as hashes, their scope, expiry and revocation.
import { TokenScope, type TokenInfo } from '../common/gen/grid/v1/token.js';
import type { Sql } from './db/connect.js';
import { mintToken, scopeFromDb, scopeToDb } from './api-token.js';

interface TokenRow {
  id: string;
  name: string;
  scope: string;
  secret_sha256: Buffer;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

export interface StoredToken {
  info: TokenInfo;
  secretSha256: Buffer;
}

const toInfo = (r: TokenRow): TokenInfo => ({
  id: r.id,
  name: r.name,
  scope: scopeFromDb(r.scope),
  createdAt: r.created_at,
  expiresAt: r.expires_at ?? undefined,
  revokedAt: r.revoked_at ?? undefined,
  lastUsedAt: r.last_used_at ?? undefined,
});

/** Stores a new token and returns it: the only time its secret exists outside the caller. */
export async function createToken(sql: Sql, name: string, scope: TokenScope, expiresInMs?: number): Promise<{ token: string; info: TokenInfo }> {
  const minted = mintToken();
  const [row] = await sql<TokenRow[]>`
    INSERT INTO api_tokens (id, name, scope, secret_sha256, expires_at)
    VALUES (${minted.id}, ${name}, ${scopeToDb(scope)}, ${minted.secretSha256},
            ${expiresInMs === undefined ? null : sql`now() + ${expiresInMs} * interval '1 millisecond'`})
    RETURNING *`;
  return { token: minted.token, info: toInfo(row!) };
}

export async function listTokens(sql: Sql): Promise<TokenInfo[]> {
  const rows = await sql<TokenRow[]>`SELECT * FROM api_tokens ORDER BY created_at DESC, id`;
  return rows.map(toInfo);
}

/** Revokes a token (again is harmless: the first time is kept); undefined if there is none. */
export async function revokeToken(sql: Sql, id: string): Promise<TokenInfo | undefined> {
  const [row] = await sql<TokenRow[]>`UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = ${id} RETURNING *`;
  return row ? toInfo(row) : undefined;
}

/** The tokens with these ids, as the authenticator checks them: one statement for many. */
export async function findTokens(sql: Sql, ids: string[]): Promise<StoredToken[]> {
  const rows = await sql<TokenRow[]>`SELECT * FROM api_tokens WHERE id = ANY(${ids}::text[])`;
  return rows.map((r) => ({ info: toInfo(r), secretSha256: r.secret_sha256 }));
}

/** Notes that these tokens were used (to within the authenticator's flush interval). */
export async function touchTokens(sql: Sql, ids: string[]): Promise<void> {
  if (ids.length > 0) await sql`UPDATE api_tokens SET last_used_at = now() WHERE id = ANY(${ids}::text[])`;
}
