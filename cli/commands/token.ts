// gridctl token: make, list and revoke API tokens (needs an admin token).
import { TokenInfo } from '../../common/gen/grid/v1/token.js';
import { parseScope, scopeName } from '../../common/token-scope.js';
import { msToDuration } from '../../common/units.js';
import { callOptions, type GridClients } from '../client.js';
import { ago, isMachine, machine, table, time } from '../format.js';
import type { Output } from './inspect.js';

/** Prints the new token alone on stdout (so `$(gridctl token create …)` captures it), and what it is on stderr. */
export async function tokenCreateCommand(clients: GridClients, flags: { name: string; scope: string; expiresIn?: number }): Promise<number> {
  const { token, info } = await clients.tokens.createToken(
    { name: flags.name, scope: parseScope(flags.scope), expiresIn: flags.expiresIn === undefined ? undefined : msToDuration(flags.expiresIn) },
    callOptions(),
  );
  process.stderr.write(`made ${scopeName(info!.scope)} token "${info!.name}" (id ${info!.id}${info!.expiresAt ? `, expires ${time(info!.expiresAt)}` : ''}); it is shown only now:\n`);
  process.stdout.write(`${token}\n`);
  return 0;
}

export async function tokenListCommand(clients: GridClients, output: Output): Promise<number> {
  const { tokens } = await clients.tokens.listTokens({}, callOptions());
  if (isMachine(output)) {
    process.stdout.write(machine(output, tokens.map((t) => TokenInfo.toJSON(t))));
    return 0;
  }
  const now = Date.now();
  const status = (t: TokenInfo) => (t.revokedAt ? 'revoked' : t.expiresAt && t.expiresAt.getTime() <= now ? 'expired' : 'valid');
  process.stdout.write(
    table(
      ['ID', 'NAME', 'SCOPE', 'STATUS', 'CREATED', 'EXPIRES', 'LAST USED'],
      tokens.map((t) => [t.id, t.name, scopeName(t.scope), status(t), ago(t.createdAt, now), t.expiresAt ? time(t.expiresAt) : 'never', ago(t.lastUsedAt, now)]),
    ),
  );
  return 0;
}

export async function tokenRevokeCommand(clients: GridClients, ids: string[]): Promise<number> {
  for (const tokenId of ids) {
    const { info } = await clients.tokens.revokeToken({ tokenId }, callOptions());
    process.stdout.write(`revoked token ${info!.id} ("${info!.name}")\n`);
  }
  return 0;
}
