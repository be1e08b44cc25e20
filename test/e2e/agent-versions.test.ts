// A rolling upgrade mixes adjacent versions only: an agent of a version the
// control plane does not work with is refused at its hello, with the versions
// it would take; one of the previous minor series is welcomed.
import test from 'ava';
import { ClientError, Status } from 'nice-grpc';
import { GRID_VERSION } from '../../common/version.js';
import { startControlPlane } from '../helpers/grid.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { connectRawAgent } from '../helpers/raw-agent.js';

let db: TestDatabase;
test.before(async () => {
  db = await createTestDatabase();
});
test.after.always(async () => db?.drop());

const [major, minor] = GRID_VERSION.split('.').map(Number) as [number, number];

test('an agent two minor versions ahead is refused with the accepted versions; the previous series is welcomed', async (t) => {
  const cp = await startControlPlane(db.url);
  try {
    const ahead = connectRawAgent(cp.address, `ahead-${process.pid}`, 'i-ahead', undefined, undefined, `${major}.${minor + 2}.0`);
    const refused = await ahead.first;
    ahead.close();
    if (!(refused instanceof ClientError)) return t.fail('the agent was welcomed');
    t.is(refused.code, Status.FAILED_PRECONDITION);
    t.is(
      refused.details,
      `agent version "${major}.${minor + 2}.0" does not work with this control plane (version ${GRID_VERSION}), which accepts agents of ` +
        `${[minor - 1, minor, minor + 1].filter((m) => m >= 0).map((m) => `${major}.${m}.x`).join(', ').replace(/, ([^,]*)$/, ' or $1')}: ` +
        'upgrade agents and control planes one minor version at a time',
    );
    const next = connectRawAgent(cp.address, `next-${process.pid}`, 'i-next', undefined, undefined, `${major}.${minor + 1}.3`);
    const welcomed = await next.first;
    next.close();
    t.false(welcomed instanceof ClientError, String(welcomed));
  } finally {
    await cp.stop();
  }
});
