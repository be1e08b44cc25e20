// examples/python/grid_client.py, with stubs generated from proto/ now (Debian's
// protoc and gRPC plugin) and Debian's grpcio, against a running Grid: the
// output a person sees, asserted line by line.
import test from 'ava';
import { runClientExample } from '../helpers/client-examples.js';
import { useGrid } from '../helpers/grid.js';

const grid = useGrid(test, { nodeId: `python-${process.pid}` });

test('the Python example submits, follows, cancels and handles errors', (t) => {
  const run = runClientExample('python', grid.cp.address);
  t.is(run.generateError, undefined);
  t.log(run.stdout);
  t.is(run.status, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  const expected: RegExp[] = [
    /^submitted [0-9a-f-]{36}; the same request again gives the same job$/,
    /^ended JOB_STATE_FAILED, reason END_REASON_FAILED, exit code 3$/,
    /^cancel asked: JOB_STATE_CANCELLING$/,
    /^ended JOB_STATE_CANCELLED, reason END_REASON_CANCELLED$/,
    /^NOT_FOUND: job [0-9a-f-]{36} does not exist$/,
    /^INVALID_ARGUMENT: spec\.resources\.cpus is -1/,
  ];
  // State lines come with timing, and the two streams' chunks interleave as they were
  // batched: every other line is in this order, and each stream's lines in theirs.
  const shown = lines.filter((l) => !/^state /.test(l) && !/^std(out|err): /.test(l));
  t.is(shown.length, expected.length, shown.join('\n'));
  expected.forEach((re, i) => t.regex(shown[i] ?? '', re));
  t.true(lines.includes('state JOB_STATE_RUNNING'));
  t.deepEqual(lines.filter((l) => l.startsWith('stdout: ')), ['stdout: hello from Grid', 'stdout: bye']);
  t.deepEqual(lines.filter((l) => l.startsWith('stderr: ')), ['stderr: this goes to stderr']);
  // All output came before the job's end was printed.
  const lastOutput = Math.max(...lines.map((l, i) => (/^std(out|err): /.test(l) ? i : -1)));
  t.true(lastOutput < lines.findIndex((l) => l.startsWith('ended ')));
});
