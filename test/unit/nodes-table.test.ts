// gridctl nodes: the default table is unchanged (it fits 80 columns); -o wide
// adds each node's labels, by key as --labels takes them.
import test from 'ava';
import { Node, NodeState } from '../../common/gen/grid/v1/node.js';
import { labelsText, nodesTable } from '../../cli/format.js';

const node = (id: string, labels: Record<string, string>) =>
  Node.fromPartial({ id, name: id, state: NodeState.NODE_STATE_READY, labels, agentVersion: '0.2.0', capacity: { slots: 2, cpus: 2, memoryBytes: 4n << 30n }, lastSeenAt: new Date() });

test('labels read as --labels takes them, by key; none is "-"', (t) => {
  t.is(labelsText({ zone: 'b', gpu: 'true' }), 'gpu=true,zone=b');
  t.is(labelsText({}), '-');
});

test('-o wide adds a LABELS column with every label; the default table has none', (t) => {
  const labels = { gpu: 'true', region: 'eu-west-1', rack: 'r17' };
  const wide = nodesTable([node('n-1', labels), node('n-2', {})], true).trimEnd().split('\n');
  t.regex(wide[0]!, /LABELS$/);
  t.regex(wide[1]!, /gpu=true,rack=r17,region=eu-west-1$/);
  t.regex(wide[2]!, /-$/);
  t.notRegex(nodesTable([node('n-1', labels)]), /LABELS|gpu=true/);
});
