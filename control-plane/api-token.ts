// API tokens, as pure logic: their format, their hash and what each scope may
// call. A token is "grid_<id>_<secret>": the id finds its row, the secret
// (32 random bytes) is checked against the SHA-256 kept there. A slow hash
// would add nothing: the secret is random, not a password a person chose.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { TokenScope } from '../common/gen/grid/v1/token.js';
import { parseScope, SCOPE_NAMES, scopeName } from '../common/token-scope.js';

export interface MintedToken {
  id: string;
  token: string;
  secretSha256: Buffer;
}

export function mintToken(): MintedToken {
  const id = randomBytes(6).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { id, token: `grid_${id}_${secret}`, secretSha256: sha256(secret) };
}

const FORMAT = /^grid_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

/** A presented token's id and the hash of its secret, or undefined if it is not shaped like one. */
export function parseToken(token: string): { id: string; secretSha256: Buffer } | undefined {
  const m = FORMAT.exec(token);
  return m ? { id: m[1]!, secretSha256: sha256(m[2]!) } : undefined;
}

export function secretMatches(presented: Buffer, stored: Buffer): boolean {
  return presented.length === stored.length && timingSafeEqual(presented, stored);
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** How a scope is stored: its name in capitals. */
export function scopeToDb(scope: TokenScope): string {
  const name = scopeName(scope);
  if (name === 'unspecified') throw new Error(`no such scope: ${scope}`);
  return name.toUpperCase();
}

export function scopeFromDb(text: string): TokenScope {
  return SCOPE_NAMES.includes(text.toLowerCase()) ? parseScope(text) : TokenScope.TOKEN_SCOPE_UNSPECIFIED;
}

/** Calls that change jobs (periodic ones too); every other JobService call, ListNodes and ListCrons only read. */
const SUBMIT_METHODS = new Set([
  '/grid.v1.JobService/SubmitJob',
  '/grid.v1.JobService/SubmitJobs',
  '/grid.v1.JobService/RunJob',
  '/grid.v1.JobService/CancelJob',
  '/grid.v1.CronService/CreateCron',
  '/grid.v1.CronService/PauseCron',
  '/grid.v1.CronService/ResumeCron',
  '/grid.v1.CronService/DeleteCron',
]);

/**
 * The least scope a call needs, or undefined for calls a token does not
 * authorise (AgentService: agents prove who they are with certificates;
 * health: probes carry none).
 * A method Grid does not know needs admin: a new service is closed until it is sorted.
 */
export function requiredScope(methodPath: string): TokenScope | undefined {
  if (methodPath.startsWith('/grid.v1.AgentService/')) return undefined;
  // Probes and load balancers carry no token; health says nothing but up or down.
  if (methodPath.startsWith('/grpc.health.v1.Health/')) return undefined;
  // The schema is the public contract, but who may browse it is still a reader.
  if (methodPath.startsWith('/grpc.reflection.v1.ServerReflection/')) return TokenScope.TOKEN_SCOPE_READ;
  if (SUBMIT_METHODS.has(methodPath)) return TokenScope.TOKEN_SCOPE_SUBMIT;
  if (methodPath.startsWith('/grid.v1.JobService/') || methodPath === '/grid.v1.NodeService/ListNodes' || methodPath === '/grid.v1.CronService/ListCrons') {
    return TokenScope.TOKEN_SCOPE_READ;
  }
  return TokenScope.TOKEN_SCOPE_ADMIN;
}

/** Scopes are ordered: each includes the ones below it. */
export function scopeAllows(held: TokenScope, needed: TokenScope): boolean {
  return held >= needed && needed !== TokenScope.TOKEN_SCOPE_UNSPECIFIED;
}
