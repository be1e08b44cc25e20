// Errors a client must branch on carry a machine-readable google.rpc detail in
// the standard grpc-status-details-bin trailer, read here as any client would
// (nice-grpc-error-details' client middleware): BadRequest names the field of
// an INVALID_ARGUMENT; ErrorInfo gives the reason of a full queue and of an
// ambiguous id prefix. The messages themselves carry no gridctl hint.
import test from 'ava';
import { createChannel, createClientFactory, ChannelCredentials } from 'nice-grpc';
import { BadRequest, ErrorInfo, errorDetailsClientMiddleware, RichClientError } from 'nice-grpc-error-details';
import { JobServiceDefinition, JobSpec } from '../../common/gen/grid/v1/job.js';
import { startControlPlane, type ControlPlaneProcess } from '../helpers/grid.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

let db: TestDatabase;
let cp: ControlPlaneProcess;
test.before(async () => {
  db = await createTestDatabase();
  // No agent: every job stays queued, so two fill the queue.
  cp = await startControlPlane(db.url, ['--max-queued', '2']);
});
test.after.always(async () => {
  await cp?.stop();
  await db?.drop();
});

function jobsClient() {
  const channel = createChannel(cp.address, ChannelCredentials.createInsecure());
  return { jobs: createClientFactory().use(errorDetailsClientMiddleware).create(JobServiceDefinition, channel), close: () => channel.close() };
}

async function refusal(call: Promise<unknown>): Promise<RichClientError> {
  const err = await call.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof RichClientError)) throw new Error(`expected a RichClientError, got ${String(err)}`);
  return err;
}

test.serial('a bad spec: INVALID_ARGUMENT with a BadRequest naming the field', async (t) => {
  const { jobs, close } = jobsClient();
  try {
    const err = await refusal(jobs.submitJob({ spec: JobSpec.fromPartial({ command: ['true'], resources: { cpus: -1 } }), requestId: '' }));
    const [bad] = err.extra.filter((d): d is BadRequest => d.$type === 'google.rpc.BadRequest');
    t.deepEqual(bad?.fieldViolations.map((v) => v.field), ['spec.resources.cpus']);
    t.regex(bad!.fieldViolations[0]!.description, /^spec\.resources\.cpus is -1/);
    const nested = await refusal(jobs.submitJob({ spec: JobSpec.fromPartial({ command: ['true'], inputs: [{ path: '../x', content: Buffer.from('') }] }), requestId: '' }));
    t.deepEqual(nested.extra.flatMap((d) => (d.$type === 'google.rpc.BadRequest' ? (d as BadRequest).fieldViolations.map((v) => v.field) : [])), ['spec.inputs[0].path']);
  } finally {
    close();
  }
});

test.serial('a full queue, then an ambiguous id prefix: ErrorInfo reasons in the grid.v1 domain', async (t) => {
  const { jobs, close } = jobsClient();
  try {
    // Ids whose short ids (the last 12 hex digits) share a first digit, so that prefix is ambiguous.
    const ids: string[] = [];
    while (ids.length < 2) ids.push((await jobs.submitJob({ spec: JobSpec.fromPartial({ command: ['true'] }), requestId: '' })).job!.id);
    const full = await refusal(jobs.submitJob({ spec: JobSpec.fromPartial({ command: ['true'] }), requestId: '' }));
    const info = full.extra.find((d): d is ErrorInfo => d.$type === 'google.rpc.ErrorInfo');
    t.deepEqual(info && { reason: info.reason, domain: info.domain, metadata: info.metadata }, { reason: 'QUEUE_FULL', domain: 'grid.v1', metadata: { max_queued: '2' } });
    t.notRegex(full.details, /gridctl/);

    const shortIds = ids.map((id) => id.replaceAll('-', '').slice(-12));
    let common = 0;
    while (common < 12 && shortIds[0]![common] === shortIds[1]![common]) common++;
    if (common < 4) {
      // No shared 4-digit prefix: make one by giving the second job the first's short-id start.
      const twin = `${ids[1]!.slice(0, 24)}${shortIds[0]!.slice(0, 4)}${ids[1]!.slice(28)}`;
      await db.sql`UPDATE jobs SET id = ${twin} WHERE id = ${ids[1]!}`;
      ids[1] = twin;
    }
    const prefix = ids[0]!.replaceAll('-', '').slice(-12, -8);
    const ambiguous = await refusal(jobs.getJob({ jobId: prefix }));
    const reason = ambiguous.extra.find((d): d is ErrorInfo => d.$type === 'google.rpc.ErrorInfo');
    t.is(reason?.reason, 'AMBIGUOUS_JOB_ID');
    t.deepEqual(reason?.metadata.candidates?.split(',').sort(), [...ids].sort());
  } finally {
    close();
  }
});
