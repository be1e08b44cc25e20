// Label constraints, pure: parsing gridctl's KEY=VALUE / KEY!=VALUE and testing nodes' labels.
import test from 'ava';
import { LabelOperator, affinityScore, formatConstraint, holds, parseConstraint, satisfies } from '../../common/label-constraints.js';

const EQ = LabelOperator.LABEL_OPERATOR_EQUAL;
const NE = LabelOperator.LABEL_OPERATOR_NOT_EQUAL;

test('parseConstraint reads = and !=, values may hold = and be empty', (t) => {
  t.deepEqual(parseConstraint('gpu=true', '--constraint'), { key: 'gpu', operator: EQ, value: 'true' });
  t.deepEqual(parseConstraint('region!=eu', '--constraint'), { key: 'region', operator: NE, value: 'eu' });
  t.deepEqual(parseConstraint('opts=a=b', '--constraint'), { key: 'opts', operator: EQ, value: 'a=b' });
  t.deepEqual(parseConstraint('tag=', '--prefer'), { key: 'tag', operator: EQ, value: '' });
  t.deepEqual(parseConstraint('k=a!=b', '--constraint'), { key: 'k', operator: EQ, value: 'a!=b' }, 'the first operator splits');
});

test('parseConstraint refuses text with no key or no operator, naming the flag', (t) => {
  for (const text of ['gpu', '=true', '!=eu', '']) {
    const err = t.throws(() => parseConstraint(text, '--prefer'));
    t.regex(err!.message, /--prefer .*KEY=VALUE or KEY!=VALUE/);
  }
});

test('formatConstraint writes what parseConstraint reads', (t) => {
  for (const text of ['gpu=true', 'region!=eu', 'opts=a=b']) t.is(formatConstraint(parseConstraint(text, '--constraint')), text);
});

test('holds: = needs the label with that value; != passes a node without the label', (t) => {
  t.true(holds({ gpu: 'true' }, { key: 'gpu', operator: EQ, value: 'true' }));
  t.false(holds({ gpu: 'false' }, { key: 'gpu', operator: EQ, value: 'true' }));
  t.false(holds({}, { key: 'gpu', operator: EQ, value: 'true' }));
  t.true(holds({}, { key: 'region', operator: NE, value: 'eu' }));
  t.false(holds({ region: 'eu' }, { key: 'region', operator: NE, value: 'eu' }));
  t.false(holds({}, { key: 'toString', operator: EQ, value: 'x' }), 'inherited properties are not labels');
});

test('satisfies needs all constraints; affinityScore counts the ones held', (t) => {
  const tests = [parseConstraint('gpu=true', 'c'), parseConstraint('region!=eu', 'c')];
  t.true(satisfies({ gpu: 'true', region: 'us' }, tests));
  t.false(satisfies({ gpu: 'true', region: 'eu' }, tests));
  t.true(satisfies({}, []));
  t.is(affinityScore({ gpu: 'true', region: 'eu' }, tests), 1);
  t.is(affinityScore({ gpu: 'true' }, tests), 2);
});
