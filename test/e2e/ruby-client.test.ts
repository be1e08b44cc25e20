// examples/ruby/grid_client.rb, the second language: stubs generated from
// proto/ now (protoc's Ruby generator, Debian's gRPC plugin), Debian's
// ruby-grpc, against a running Grid; its output asserted.
import test from 'ava';
import { runClientExample } from '../helpers/client-examples.js';
import { useGrid } from '../helpers/grid.js';

const grid = useGrid(test, { nodeId: `ruby-${process.pid}` });

test('the Ruby example submits, follows, cancels and handles errors', (t) => {
  const run = runClientExample('ruby', grid.cp.address);
  t.is(run.generateError, undefined);
  t.log(run.stdout);
  t.is(run.status, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  t.deepEqual(lines.filter((l) => l.startsWith('stdout: ')), ['stdout: hello from Grid']);
  t.deepEqual(lines.filter((l) => l.startsWith('stderr: ')), ['stderr: oops']);
  const expected: RegExp[] = [
    /^submitted [0-9a-f-]{36}; the same request again gives the same job$/,
    /^ended JOB_STATE_FAILED, reason END_REASON_FAILED, exit code 3$/,
    /^cancel asked: JOB_STATE_CANCELLING$/,
    /^ended JOB_STATE_CANCELLED, reason END_REASON_CANCELLED$/,
    /^NOT_FOUND: job [0-9a-f-]{36} does not exist$/,
    /^INVALID_ARGUMENT: spec\.resources\.cpus is -1/,
  ];
  const shown = lines.filter((l) => !/^std(out|err): /.test(l));
  t.is(shown.length, expected.length, shown.join('\n'));
  expected.forEach((re, i) => t.regex(shown[i] ?? '', re));
});
