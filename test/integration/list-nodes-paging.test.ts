// ListNodes answers a page at a time, so a large fleet never makes the answer
// pass the message limit; the pages cover every node once, in order.
import test from 'ava';
import { Status, ServerError } from 'nice-grpc';
import { migrate } from '../../control-plane/db/migrate.js';
import { createNodeService } from '../../control-plane/node-service.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

let db: TestDatabase;
test.before(async () => {
  db = await createTestDatabase();
  await migrate(db.sql);
  await db.sql`
    INSERT INTO nodes (id, name, state, slots, cpus, memory_bytes, labels, agent_version)
    SELECT 'node-' || i, 'host-' || (i % 7), 'READY', 1, 1, 1073741824, '{}'::jsonb, 'test' FROM generate_series(1, 2500) AS i`;
});
test.after.always(async () => db?.drop());

test('pages of at most page_size nodes cover the fleet once; a bad page is INVALID_ARGUMENT', async (t) => {
  // ListNodes reads Postgres alone: no drain owner is needed.
  const service = createNodeService({ sql: db.sql, drains: undefined as never });
  const seen: string[] = [];
  let pageToken = '';
  let pages = 0;
  do {
    const page = (await service.listNodes({ pageSize: 0, pageToken }, {} as never)) as { nodes: { id: string }[]; nextPageToken: string };
    t.true(page.nodes.length <= 1000);
    seen.push(...page.nodes.map((n) => n.id));
    pageToken = page.nextPageToken;
    pages++;
  } while (pageToken);
  t.is(pages, 3);
  t.is(new Set(seen).size, 2500);
  for (const bad of [{ pageSize: 2001, pageToken: '' }, { pageSize: 10, pageToken: 'nonsense' }, { pageSize: 10, pageToken: Buffer.from(JSON.stringify({ name: 'a\0', id: 'b' })).toString('base64url') }]) {
    const err = await t.throwsAsync(Promise.resolve(service.listNodes(bad, {} as never)), { instanceOf: ServerError });
    t.is(err?.code, Status.INVALID_ARGUMENT);
  }
});
