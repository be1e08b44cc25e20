// An API token's scope as people type and read it: read, submit, admin.
import { TokenScope } from './gen/grid/v1/token.js';

const BY_NAME: Record<string, TokenScope> = {
  read: TokenScope.TOKEN_SCOPE_READ,
  submit: TokenScope.TOKEN_SCOPE_SUBMIT,
  admin: TokenScope.TOKEN_SCOPE_ADMIN,
};

export const SCOPE_NAMES = Object.keys(BY_NAME);

export function scopeName(scope: TokenScope): string {
  return Object.keys(BY_NAME).find((k) => BY_NAME[k] === scope) ?? 'unspecified';
}

export function parseScope(text: string): TokenScope {
  const scope = BY_NAME[text.trim().toLowerCase()];
  if (scope === undefined) throw new Error(`"${text}" is not a scope: read, submit or admin`);
  return scope;
}
