// API tokens: their shape, their hash and what each scope may call.
import test from 'ava';
import { TokenScope } from '../../common/gen/grid/v1/token.js';
import { mintToken, parseToken, requiredScope, scopeAllows, secretMatches } from '../../control-plane/api-token.js';

test('a minted token parses back to its id and the hash that is stored', (t) => {
  const minted = mintToken();
  const parsed = parseToken(minted.token)!;
  t.is(parsed.id, minted.id);
  t.true(secretMatches(parsed.secretSha256, minted.secretSha256));
  t.false(minted.token.includes(minted.secretSha256.toString('hex')), 'the stored hash is not the secret');
  t.false(secretMatches(parseToken(minted.token.slice(0, -1) + (minted.token.endsWith('A') ? 'B' : 'A'))!.secretSha256, minted.secretSha256));
});

test('anything not shaped like a token is not parsed', (t) => {
  for (const text of ['', 'grid_', 'Bearer x', `grid_${'0'.repeat(12)}_short`, `grid_${'z'.repeat(12)}_${'A'.repeat(43)}`]) t.is(parseToken(text), undefined, text);
});

test('each call needs its scope; agents need none (they have certificates); an unknown service needs admin', (t) => {
  t.is(requiredScope('/grid.v1.JobService/GetJob'), TokenScope.TOKEN_SCOPE_READ);
  t.is(requiredScope('/grid.v1.JobService/WatchJob'), TokenScope.TOKEN_SCOPE_READ);
  t.is(requiredScope('/grid.v1.NodeService/ListNodes'), TokenScope.TOKEN_SCOPE_READ);
  t.is(requiredScope('/grid.v1.JobService/SubmitJobs'), TokenScope.TOKEN_SCOPE_SUBMIT);
  t.is(requiredScope('/grid.v1.JobService/CancelJob'), TokenScope.TOKEN_SCOPE_SUBMIT);
  // It submits: a read token may watch a job, not start one.
  t.is(requiredScope('/grid.v1.JobService/RunJob'), TokenScope.TOKEN_SCOPE_SUBMIT);
  t.is(requiredScope('/grid.v1.CronService/ListCrons'), TokenScope.TOKEN_SCOPE_READ);
  for (const m of ['CreateCron', 'PauseCron', 'ResumeCron', 'DeleteCron']) t.is(requiredScope(`/grid.v1.CronService/${m}`), TokenScope.TOKEN_SCOPE_SUBMIT, m);
  t.is(requiredScope('/grid.v1.TokenService/CreateToken'), TokenScope.TOKEN_SCOPE_ADMIN);
  t.is(requiredScope('/grid.v1.NodeService/DrainNode'), TokenScope.TOKEN_SCOPE_ADMIN);
  t.is(requiredScope('/grid.v1.NodeService/UndrainNode'), TokenScope.TOKEN_SCOPE_ADMIN);
  t.is(requiredScope('/grpc.reflection.v1alpha.ServerReflection/Info'), TokenScope.TOKEN_SCOPE_ADMIN);
  t.is(requiredScope('/grpc.reflection.v1.ServerReflection/ServerReflectionInfo'), TokenScope.TOKEN_SCOPE_READ);
  t.is(requiredScope('/grpc.health.v1.Health/Check'), undefined);
  t.is(requiredScope('/grid.v1.AgentService/Connect'), undefined);
  t.true(scopeAllows(TokenScope.TOKEN_SCOPE_ADMIN, TokenScope.TOKEN_SCOPE_READ));
  t.false(scopeAllows(TokenScope.TOKEN_SCOPE_READ, TokenScope.TOKEN_SCOPE_SUBMIT));
  t.false(scopeAllows(TokenScope.TOKEN_SCOPE_UNSPECIFIED, TokenScope.TOKEN_SCOPE_READ));
});
