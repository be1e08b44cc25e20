// gridctl run: operands, --env and flags turned into a JobSpec.
import test from 'ava';
import { buildSpec, parseEnv, parseStartTime, splitRunOperands, type RunFlags } from '../../cli/run-spec.js';
import { LabelOperator } from '../../common/label-constraints.js';

test('operands that all come after -- are the command', (t) => {
  t.deepEqual(splitRunOperands(['echo', 'hi'], ['echo', 'hi']), { rest: ['echo', 'hi'] });
});

test('a script before -- takes what follows as its args', (t) => {
  t.deepEqual(splitRunOperands(['job.py', 'a'], ['a']), { script: 'job.py', rest: ['a'] });
  t.deepEqual(splitRunOperands(['job.py', 'a', '--flag'], ['a', '--flag']), { script: 'job.py', rest: ['a', '--flag'] });
});

test('a script without -- has no args', (t) => {
  t.deepEqual(splitRunOperands(['job.py'], undefined), { script: 'job.py', rest: [] });
});

test('a script followed by a bare -- has no args', (t) => {
  t.deepEqual(splitRunOperands(['job.py'], []), { script: 'job.py', rest: [] });
});

test('without -- the first operand is the script and the rest its args', (t) => {
  t.deepEqual(splitRunOperands(['job.sh', 'x', 'y'], undefined), { script: 'job.sh', rest: ['x', 'y'] });
});

test('parseEnv reads NAME=VALUE pairs, keeping later "=" in the value', (t) => {
  t.deepEqual(parseEnv(['A=1', 'B=', 'C=x=y'], {}), { A: '1', B: '', C: 'x=y' });
});

test('parseEnv takes a bare NAME from the given local environment', (t) => {
  t.deepEqual(parseEnv(['HOME'], { HOME: '/home/me', OTHER: 'no' }), { HOME: '/home/me' });
  t.deepEqual(parseEnv(['EMPTY'], { EMPTY: '' }), { EMPTY: '' });
});

test('parseEnv refuses a bare NAME that is not set locally', (t) => {
  t.throws(() => parseEnv(['MISSING'], { HOME: '/home/me' }), {
    message: /--env MISSING: MISSING is not set here; use --env MISSING=VALUE/,
  });
});

test('parseEnv refuses a pair with no name before "="', (t) => {
  t.throws(() => parseEnv(['=x'], {}), { message: /--env "=x" has no name before "="/ });
  t.throws(() => parseEnv(['='], {}), { message: /has no name before "="/ });
});

test('parseEnv lets a later pair override an earlier one', (t) => {
  t.deepEqual(parseEnv(['A=1', 'A=2'], {}), { A: '2' });
});

const noFlags: RunFlags = { env: [] };

test('buildSpec for a command with no flags leaves every default to the server', (t) => {
  t.deepEqual(buildSpec(noFlags, { kind: 'command', argv: ['echo', 'hi'] }, {}), {
    image: '',
    command: ['echo', 'hi'],
    script: undefined,
    args: [],
    env: {},
    secretEnv: {},
    workingDir: '',
    resources: undefined,
    timeout: undefined,
    maxAttempts: 0,
    queueTimeout: undefined,
    stopSignal: '',
    stopGrace: undefined,
    inputs: [],
    requirements: Buffer.alloc(0),
    stdin: Buffer.alloc(0),
    priority: 0,
    constraints: [],
    affinities: [],
    retries: 0,
    retryBackoff: undefined,
    notBefore: undefined,
  });
});

test('buildSpec for a command carries every flag', (t) => {
  const flags: RunFlags = {
    image: 'alpine:3.20',
    env: ['A=1', 'USER'],
    cpu: 0.5,
    memory: 268_435_456,
    timeout: 90_500,
    runtime: 'python',
    workdir: '/work',
    maxAttempts: 3,
    queueTimeout: 60_000,
    stopSignal: 'SIGINT',
    stopGrace: 0,
    priority: -7,
    constraint: [{ key: 'gpu', operator: LabelOperator.LABEL_OPERATOR_EQUAL, value: 'true' }],
    prefer: [{ key: 'region', operator: LabelOperator.LABEL_OPERATOR_NOT_EQUAL, value: 'eu' }],
    retries: 3,
    retryBackoff: 2500,
    in: 600_000,
  };
  t.deepEqual(buildSpec(flags, { kind: 'command', argv: ['ls', '-l'] }, { USER: 'me' }, [], Buffer.alloc(0), Date.UTC(2026, 11, 4, 9, 0)), {
    image: 'alpine:3.20',
    command: ['ls', '-l'],
    script: undefined,
    args: [],
    env: { A: '1', USER: 'me' },
    secretEnv: {},
    workingDir: '/work',
    resources: { cpus: 0.5, memoryBytes: 268_435_456n },
    timeout: { seconds: 90n, nanos: 500_000_000 },
    maxAttempts: 3,
    queueTimeout: { seconds: 60n, nanos: 0 },
    stopSignal: 'SIGINT',
    stopGrace: { seconds: 0n, nanos: 0 },
    inputs: [],
    requirements: Buffer.alloc(0),
    stdin: Buffer.alloc(0),
    priority: -7,
    constraints: [{ key: 'gpu', operator: LabelOperator.LABEL_OPERATOR_EQUAL, value: 'true' }],
    affinities: [{ key: 'region', operator: LabelOperator.LABEL_OPERATOR_NOT_EQUAL, value: 'eu' }],
    retries: 3,
    retryBackoff: { seconds: 2n, nanos: 500_000_000 },
    notBefore: new Date(Date.UTC(2026, 11, 4, 9, 10)),
  });
});

test('--at takes an ISO time as given, or HH:MM as the next such time of day; --in and --at are one or the other', (t) => {
  const now = new Date(2026, 11, 4, 9, 30);
  t.deepEqual(parseStartTime('2026-12-05T08:00:00Z', now), new Date(Date.UTC(2026, 11, 5, 8, 0)));
  t.deepEqual(parseStartTime('10:15', now), new Date(2026, 11, 4, 10, 15));
  t.deepEqual(parseStartTime('09:00', now), new Date(2026, 11, 5, 9, 0), 'past today: tomorrow');
  t.throws(() => parseStartTime('25:00', now), { message: /not a time of day/ });
  t.throws(() => parseStartTime('tomorrow', now), { message: /"tomorrow" is not a time: give e\.g\. 2026-12-04T09:00:00Z/ });
  t.throws(() => buildSpec({ env: [], in: 1000, at: now }, { kind: 'command', argv: ['true'] }, {}), { message: 'give --in or --at, not both' });
});

test('buildSpec for a script sends its content, runtime and args, and no command', (t) => {
  const content = Buffer.from('print("hi")\n');
  const spec = buildSpec({ env: [], runtime: 'python' }, { kind: 'script', name: 'job.py', content, args: ['a', 'b'] }, {});
  t.deepEqual(spec.command, []);
  t.deepEqual(spec.args, ['a', 'b']);
  t.is(spec.script?.name, 'job.py');
  t.is(spec.script?.runtime, 'python');
  t.true(spec.script?.content.equals(Buffer.from('print("hi")\n')));
  t.is(spec.resources, undefined);
});

test('buildSpec for a script without --runtime leaves the runtime empty', (t) => {
  const spec = buildSpec(noFlags, { kind: 'script', name: 'job.sh', content: Buffer.from('echo'), args: [] }, {});
  t.is(spec.script?.runtime, '');
});

test('buildSpec sets resources when only cpu is given, with memory 0n', (t) => {
  const spec = buildSpec({ env: [], cpu: 2 }, { kind: 'command', argv: ['x'] }, {});
  t.deepEqual(spec.resources, { cpus: 2, memoryBytes: 0n });
});

test('buildSpec sets resources when only memory is given, with cpus 0 and memory as bigint', (t) => {
  const spec = buildSpec({ env: [], memory: 536_870_912 }, { kind: 'command', argv: ['x'] }, {});
  t.deepEqual(spec.resources, { cpus: 0, memoryBytes: 536_870_912n });
  t.is(typeof spec.resources?.memoryBytes, 'bigint');
});

test('buildSpec turns a timeout of 0 ms into a zero Duration, not no timeout', (t) => {
  const spec = buildSpec({ env: [], timeout: 0 }, { kind: 'command', argv: ['x'] }, {});
  t.deepEqual(spec.timeout, { seconds: 0n, nanos: 0 });
});

test('buildSpec reads bare --env names from the environment it is given', (t) => {
  const spec = buildSpec({ env: ['TOKEN'] }, { kind: 'command', argv: ['x'] }, { TOKEN: 's3cret' });
  t.deepEqual(spec.env, { TOKEN: 's3cret' });
  t.throws(() => buildSpec({ env: ['TOKEN'] }, { kind: 'command', argv: ['x'] }, {}), { message: /TOKEN is not set here/ });
});

test('--secret-env takes names, their values from this shell, never NAME=VALUE', (t) => {
  const spec = buildSpec({ env: [], secretEnv: ['TOKEN'] }, { kind: 'command', argv: ['x'] }, { TOKEN: 's3cret' });
  t.deepEqual(spec.secretEnv, { TOKEN: 's3cret' });
  t.deepEqual(spec.env, {});
  t.throws(() => buildSpec({ env: [], secretEnv: ['TOKEN=s3cret'] }, { kind: 'command', argv: ['x'] }, {}), { message: /takes a NAME, not NAME=VALUE/ });
  t.throws(() => buildSpec({ env: [], secretEnv: ['TOKEN'] }, { kind: 'command', argv: ['x'] }, {}), { message: /TOKEN is not set here/ });
});
