// gridctl nodes shows each node's labels (by key, as --labels takes them), fits
// 80 columns by cutting them first, and shows them whole with -o wide.
import test from 'ava';
import { Node, NodeState } from '../../common/gen/grid/v1/node.js';
import { labelsText, nodesTable } from '../../cli/format.js';

const node = (id: string, labels: Record<string, string>) =>
  Node.fromPartial({ id, name: id, state: NodeState.NODE_STATE_READY, labels, agentVersion: '0.2.0', capacity: { slots: 2, cpus: 2, memoryBytes: 4n << 30n }, lastSeenAt: new Date() });

test('labels read as --labels takes them, by key; none is "-"', (t) => {
  t.is(labelsText({ zone: 'b', gpu: 'true' }), 'gpu=true,zone=b');
  t.is(labelsText({}), '-');
});

test('the table has a LABELS column that gives way at 80 columns; wide keeps it whole', (t) => {
  const long = { gpu: 'true', region: 'eu-west-1', rack: 'r17', team: 'data-platform', tier: 'batch' };
  const narrow = nodesTable([node('n-1', long), node('n-2', {})]);
  const lines = narrow.trimEnd().split('\n');
  t.regex(lines[0]!, /LABELS$/);
  t.true(lines.every((l) => l.length <= 80), lines.map((l) => `${l.length}: ${l}`).join('\n'));
  t.regex(lines[1]!, /gpu=true,rack=…$/, "cut with an ellipsis");
  t.regex(lines[2]!, /-$/);
  t.true(nodesTable([node('n-1', long)], true).includes(labelsText(long)));
});
