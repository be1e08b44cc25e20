// validateSubmission: defaults filled in, scripts resolved through runtime presets,
// and every refusal an INVALID_ARGUMENT whose message says what was wrong.
import test, { type ExecutionContext } from 'ava';
import { ServerError, Status } from 'nice-grpc';
import { JobSpec } from '../../common/gen/grid/v1/job.js';
import { LabelOperator } from '../../common/label-constraints.js';
import { DEFAULT_SPEC_POLICY, validateSubmission, type SpecPolicy } from '../../control-plane/spec-validation.js';
import { DEFAULT_RUNTIMES, runtimeTable } from '../../control-plane/runtime-presets.js';

const runtimes = runtimeTable(DEFAULT_RUNTIMES);

function spec(overrides: Partial<JobSpec> = {}): JobSpec {
  return JobSpec.fromPartial({ command: ['echo', 'hi'], ...overrides });
}

function scriptSpec(name: string, content = 'print("hi")\n', runtime = '', overrides: Partial<JobSpec> = {}): JobSpec {
  return spec({ command: [], script: { name, content: Buffer.from(content), runtime }, ...overrides });
}

function refuses(
  t: ExecutionContext,
  input: JobSpec | undefined,
  message: RegExp,
  policy: SpecPolicy = DEFAULT_SPEC_POLICY,
): void {
  const err = t.throws(() => validateSubmission(input, policy, runtimes), { instanceOf: ServerError });
  t.is(err?.code, Status.INVALID_ARGUMENT);
  t.regex(err?.details ?? '', message);
}

test('a command spec gets the default image, resources, timeout and attempts', (t) => {
  const { spec: out, task } = validateSubmission(spec({ args: ['there'] }), DEFAULT_SPEC_POLICY, runtimes);
  t.is(out.image, 'busybox:1.37');
  t.is(out.image, DEFAULT_SPEC_POLICY.defaultImage);
  t.deepEqual(out.resources, { cpus: 1, memoryBytes: 536870912n });
  t.deepEqual(out.timeout, { seconds: 3600n, nanos: 0 });
  t.is(out.maxAttempts, 2);
  t.deepEqual(out.command, ['echo', 'hi']);

  t.is(task.image, 'busybox:1.37');
  t.deepEqual(task.argv, ['echo', 'hi', 'there']);
  t.is(task.cpus, 1);
  t.is(task.memoryBytes, 536870912n);
  t.deepEqual(task.timeout, { seconds: 3600n, nanos: 0 });
  t.deepEqual(task.files, []);
  t.is(task.pidsLimit, 4096n);
  t.deepEqual(task.env, {});
  t.is(task.workingDir, '');
});

test('a command spec keeps the resources, timeout, env and working dir it gives', (t) => {
  const { spec: out, task } = validateSubmission(
    spec({
      image: 'alpine:3.20',
      env: { A: '1', _B2: 'x y' },
      workingDir: '/tmp',
      resources: { cpus: 0.5, memoryBytes: 64n * 1024n * 1024n },
      timeout: { seconds: 90n, nanos: 500_000_000 },
      maxAttempts: 3,
    }),
    DEFAULT_SPEC_POLICY,
    runtimes,
  );
  t.is(task.image, 'alpine:3.20');
  t.is(task.cpus, 0.5);
  t.is(task.memoryBytes, 67108864n);
  t.deepEqual(out.resources, { cpus: 0.5, memoryBytes: 67108864n });
  t.deepEqual(task.timeout, { seconds: 90n, nanos: 500_000_000 });
  t.is(out.maxAttempts, 3);
  t.deepEqual(task.env, { A: '1', _B2: 'x y' });
  t.is(task.workingDir, '/tmp');
});

test('a .py script runs with the python preset: image, interpreter, file placed in /grid/in', (t) => {
  const content = 'import sys\nprint(sys.argv)\n';
  const { spec: out, task } = validateSubmission(
    scriptSpec('x.py', content, '', { args: ['a', 'b c'] }),
    DEFAULT_SPEC_POLICY,
    runtimes,
  );
  t.is(out.image, 'python:3.12-slim');
  t.is(out.script?.runtime, 'python');
  t.is(task.image, 'python:3.12-slim');
  t.deepEqual(task.argv, ['python3', '-u', '/grid/in/x.py', 'a', 'b c']);
  t.is(task.files.length, 1);
  t.is(task.files[0]!.path, '/grid/in/x.py');
  t.is(task.files[0]!.mode, 0o755);
  t.is(Buffer.from(task.files[0]!.content).toString('utf8'), content);
});

test('the runtime is inferred from the extension case-insensitively', (t) => {
  const { task } = validateSubmission(scriptSpec('RUN.SH', 'echo hi'), DEFAULT_SPEC_POLICY, runtimes);
  t.deepEqual(task.argv, ['sh', '/grid/in/RUN.SH']);
  t.is(task.image, 'busybox:1.37');
});

test('an explicit runtime overrides the one the extension suggests', (t) => {
  const { spec: out, task } = validateSubmission(scriptSpec('x.py', 'console.log(1)', 'node'), DEFAULT_SPEC_POLICY, runtimes);
  t.is(out.script?.runtime, 'node');
  t.is(task.image, 'node:22-slim');
  t.deepEqual(task.argv, ['node', '/grid/in/x.py']);
});

test('an explicit runtime lets a script without a known extension run', (t) => {
  const { task } = validateSubmission(scriptSpec('job', 'echo hi', 'bash'), DEFAULT_SPEC_POLICY, runtimes);
  t.is(task.image, 'bash:5.2');
  t.deepEqual(task.argv, ['bash', '/grid/in/job']);
});

test('an explicit image overrides the runtime preset image but keeps its interpreter', (t) => {
  const { spec: out, task } = validateSubmission(
    scriptSpec('x.py', 'print(1)', '', { image: 'python:3.11' }),
    DEFAULT_SPEC_POLICY,
    runtimes,
  );
  t.is(out.image, 'python:3.11');
  t.is(task.image, 'python:3.11');
  t.deepEqual(task.argv, ['python3', '-u', '/grid/in/x.py']);
});

test('validation does not mutate the spec it is given', (t) => {
  const commandInput = spec({ env: { A: '1' }, resources: { cpus: 0, memoryBytes: 0n } });
  const commandCopy = spec({ env: { A: '1' }, resources: { cpus: 0, memoryBytes: 0n } });
  validateSubmission(commandInput, DEFAULT_SPEC_POLICY, runtimes);
  t.deepEqual(commandInput, commandCopy);
  t.is(commandInput.image, '');
  t.is(commandInput.resources?.memoryBytes, 0n);

  // structuredClone would turn the Buffer into a plain Uint8Array, so the copy
  // is built by the same factory instead.
  const scriptInput = scriptSpec('x.py', 'print(1)', '', { args: ['a'] });
  const scriptCopy = scriptSpec('x.py', 'print(1)', '', { args: ['a'] });
  const content = scriptInput.script!.content;
  validateSubmission(scriptInput, DEFAULT_SPEC_POLICY, runtimes);
  t.deepEqual(scriptInput, scriptCopy);
  t.is(scriptInput.script!.content, content);
  t.is(content.toString('utf8'), 'print(1)');
  t.is(scriptInput.script?.runtime, '');
  t.is(scriptInput.timeout, undefined);
  t.is(scriptInput.maxAttempts, 0);
});

test('refuses a missing spec', (t) => {
  refuses(t, undefined, /spec is missing/);
});

test('refuses a spec with neither command nor script', (t) => {
  refuses(t, spec({ command: [] }), /spec\.command is empty/);
});

test('refuses a spec with both a command and a script', (t) => {
  refuses(t, scriptSpec('x.py', 'print(1)', '', { command: ['echo'] }), /both a command and a script/);
});

test('refuses a blank argv[0]', (t) => {
  refuses(t, spec({ command: ['  ', 'hi'] }), /spec\.command\[0\] is empty/);
  refuses(t, spec({ command: [''] }), /spec\.command\[0\] is empty/);
});

test('refuses a NUL byte in an argument', (t) => {
  refuses(t, spec({ command: ['echo', 'a\0b'] }), /spec\.command\[1\] contains a NUL byte/);
  refuses(t, spec({ args: ['x\0'] }), /spec\.args\[0\] contains a NUL byte/);
});

test('refuses an unknown runtime and lists the known ones', (t) => {
  refuses(t, scriptSpec('x.py', 'print(1)', 'ruby'), /runtime "ruby" is unknown; this server has: python, node, bash, sh/);
});

test('refuses a script whose extension matches no runtime, listing the known ones', (t) => {
  refuses(t, scriptSpec('job.rb', 'puts 1'), /cannot tell the runtime of "job\.rb".*python, node, bash, sh/);
});

test('refuses a script name containing a slash', (t) => {
  refuses(t, scriptSpec('../x.py'), /spec\.script\.name "\.\.\/x\.py" is not a plain file name/);
  refuses(t, scriptSpec('dir/x.py'), /is not a plain file name/);
});

test('refuses script names "." and ".." and an empty name', (t) => {
  refuses(t, scriptSpec('.', 'x', 'sh'), /is not a plain file name/);
  refuses(t, scriptSpec('..', 'x', 'sh'), /is not a plain file name/);
  refuses(t, scriptSpec('', 'x', 'sh'), /is not a plain file name/);
});

test('refuses a script larger than the policy allows, and accepts one at the limit', (t) => {
  const policy: SpecPolicy = { ...DEFAULT_SPEC_POLICY, maxScriptBytes: 16 };
  refuses(t, scriptSpec('x.py', 'x'.repeat(17)), /spec\.script\.content is 17 B, above the limit of 16 B/, policy);
  t.notThrows(() => validateSubmission(scriptSpec('x.py', 'x'.repeat(16)), policy, runtimes));
});

test('refuses a bad image reference', (t) => {
  refuses(t, spec({ image: 'bad image' }), /spec\.image "bad image" is not a valid image reference/);
  refuses(t, spec({ image: 'Ubuntu' }), /repository names must be lowercase/);
});

test('refuses an invalid env name', (t) => {
  refuses(t, spec({ env: { '1ABC': 'x' } }), /spec\.env name "1ABC" is not valid/);
  refuses(t, spec({ env: { 'A-B': 'x' } }), /spec\.env name "A-B" is not valid/);
  refuses(t, spec({ env: { '': 'x' } }), /spec\.env name "" is not valid/);
});

test('refuses an env value containing NUL', (t) => {
  refuses(t, spec({ env: { OK: 'a\0b' } }), /spec\.env OK contains a NUL byte/);
});

test('refuses a relative working dir', (t) => {
  refuses(t, spec({ workingDir: 'tmp/work' }), /spec\.working_dir "tmp\/work" must be an absolute path/);
});

test('refuses cpus below 0.01 and above the maximum', (t) => {
  refuses(t, spec({ resources: { cpus: 0.001, memoryBytes: 0n } }), /spec\.resources\.cpus is 0\.001: must be between 0\.01 and 256/);
  refuses(t, spec({ resources: { cpus: 257, memoryBytes: 0n } }), /spec\.resources\.cpus is 257: must be between 0\.01 and 256/);
  refuses(t, spec({ resources: { cpus: -1, memoryBytes: 0n } }), /spec\.resources\.cpus is -1/);
  refuses(t, spec({ resources: { cpus: Number.POSITIVE_INFINITY, memoryBytes: 0n } }), /spec\.resources\.cpus is Infinity/);
});

test('accepts cpus at the bounds 0.01 and 256', (t) => {
  t.is(validateSubmission(spec({ resources: { cpus: 0.01, memoryBytes: 0n } }), DEFAULT_SPEC_POLICY, runtimes).task.cpus, 0.01);
  t.is(validateSubmission(spec({ resources: { cpus: 256, memoryBytes: 0n } }), DEFAULT_SPEC_POLICY, runtimes).task.cpus, 256);
});

test('refuses negative memory', (t) => {
  refuses(t, spec({ resources: { cpus: 0, memoryBytes: -1n } }), /spec\.resources\.memory_bytes is -1 .*must be at least 6 MiB/);
});

test('refuses memory below 6 MiB', (t) => {
  refuses(t, spec({ resources: { cpus: 0, memoryBytes: 1024n } }), /spec\.resources\.memory_bytes is 1024 \(1 KiB\): must be at least 6 MiB/);
});

test('accepts memory of exactly 6 MiB', (t) => {
  const { task } = validateSubmission(spec({ resources: { cpus: 0, memoryBytes: 6291456n } }), DEFAULT_SPEC_POLICY, runtimes);
  t.is(task.memoryBytes, 6291456n);
  t.is(task.cpus, 1);
});

test('refuses memory of 2^60 bytes as above the maximum', (t) => {
  refuses(t, spec({ resources: { cpus: 0, memoryBytes: 2n ** 60n } }), /spec\.resources\.memory_bytes is 1 EiB, above this server's maximum of 1 TiB/);
});

test('refuses a negative timeout', (t) => {
  refuses(t, spec({ timeout: { seconds: -5n, nanos: 0 } }), /spec\.timeout is negative/);
  refuses(t, spec({ timeout: { seconds: 0n, nanos: -1 } }), /spec\.timeout is negative/);
});

test('refuses a timeout above the maximum of 7 days', (t) => {
  refuses(t, spec({ timeout: { seconds: 8n * 24n * 3600n, nanos: 0 } }), /spec\.timeout is 192h, above this server's maximum of 168h/);
});

test('accepts a timeout of exactly 7 days', (t) => {
  const { task } = validateSubmission(spec({ timeout: { seconds: 604800n, nanos: 0 } }), DEFAULT_SPEC_POLICY, runtimes);
  t.deepEqual(task.timeout, { seconds: 604800n, nanos: 0 });
});

test('refuses maxAttempts above 10 and fractional or negative values', (t) => {
  refuses(t, spec({ maxAttempts: 11 }), /spec\.max_attempts is 11: must be between 1 and 10/);
  refuses(t, spec({ maxAttempts: -1 }), /spec\.max_attempts is -1/);
  refuses(t, spec({ maxAttempts: 1.5 }), /spec\.max_attempts is 1\.5/);
});

test('accepts maxAttempts of 10', (t) => {
  t.is(validateSubmission(spec({ maxAttempts: 10 }), DEFAULT_SPEC_POLICY, runtimes).spec.maxAttempts, 10);
});

test('refuses an env name or value no process could be given (a fuzz run sent a 10 MB name, and it was accepted)', (t) => {
  refuses(t, spec({ env: { ['A'.repeat(10 * 2 ** 20)]: 'x' } }), /spec\.env name of 10485760 characters is too long: at most 256/);
  refuses(t, spec({ env: { BIG: 'x'.repeat(200 * 1024) } }), /spec\.env BIG is 204804 bytes as "BIG=value"; a process's environment string may be at most 131071/);
  const { task } = validateSubmission(spec({ env: { FINE: 'x'.repeat(100 * 1024) } }), DEFAULT_SPEC_POLICY, runtimes);
  t.is(task.env.FINE?.length, 100 * 1024);
});

test('the environment in all is bounded: Linux starts no process whose env passes its limit', (t) => {
  const env = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`V${i}`, 'x'.repeat(120 * 1024)]));
  refuses(t, spec({ env }), /spec\.env and spec\.secret_env are 1\.2 MiB as "NAME=value" strings; at most 1 MiB/);
  refuses(t, spec({ env: { A: 'x'.repeat(100 * 1024) }, secretEnv: Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`S${i}`, 'y'.repeat(110 * 1024)])) }), /at most 1 MiB/);
});

test('secret env values leave the spec: it keeps their names, the task their names only', (t) => {
  const { spec: out, task, secrets } = validateSubmission(spec({ env: { A: '1' }, secretEnv: { TOKEN: 's3cret' } }), DEFAULT_SPEC_POLICY, runtimes);
  t.deepEqual(out.secretEnv, { TOKEN: '<redacted>' });
  t.deepEqual(task.env, { A: '1' });
  t.deepEqual(task.secretEnvNames, ['TOKEN']);
  t.deepEqual(secrets, { TOKEN: 's3cret' });
  refuses(t, spec({ env: { TOKEN: 'a' }, secretEnv: { TOKEN: 'b' } }), /TOKEN is in both spec\.env and spec\.secret_env/);
  refuses(t, spec({ secretEnv: { 'BAD-NAME': 'b' } }), /spec\.secret_env name "BAD-NAME" is not valid/);
  refuses(t, spec({ secretEnv: { A: 'x'.repeat(40_000), B: 'y'.repeat(40_000) } }), /spec\.secret_env values are 78\.1 KiB in all; at most 64 KiB/);
});

test('paths are bounded in length and hold no NUL', (t) => {
  refuses(t, spec({ workingDir: '/' + 'd'.repeat(5000) }), /spec\.working_dir is 5001 characters; at most 4096/);
  refuses(t, spec({ workingDir: '/tmp\0x' }), /spec\.working_dir holds a NUL/);
  refuses(t, spec({ inputs: [{ path: 'p'.repeat(5000), content: Buffer.from('x'), mode: 0 }] }), /spec\.inputs\[0\]\.path is 5000 characters; at most 4096/);
});

test('label constraints and affinities: keys named, values and counts bounded, an operator set', (t) => {
  const EQ = LabelOperator.LABEL_OPERATOR_EQUAL;
  const ok = { key: 'gpu', operator: EQ, value: 'true' };
  t.deepEqual(validateSubmission(spec({ constraints: [ok], affinities: [ok] }), DEFAULT_SPEC_POLICY, runtimes).spec.constraints, [ok]);
  refuses(t, spec({ constraints: [{ ...ok, key: '' }] }), /spec\.constraints\[0\]\.key is empty/);
  refuses(t, spec({ affinities: [ok, { ...ok, value: 'x'.repeat(257) }] }), /spec\.affinities\[1\]\.value must be at most 256/);
  refuses(t, spec({ constraints: [{ ...ok, key: 'a\0b' }] }), /spec\.constraints\[0\]\.key .*no NUL/);
  refuses(t, spec({ constraints: [{ ...ok, operator: LabelOperator.LABEL_OPERATOR_UNSPECIFIED }] }), /spec\.constraints\[0\]\.operator is not set/);
  refuses(t, spec({ constraints: Array.from({ length: 17 }, () => ok) }), /spec\.constraints has 17 entries: at most 16/);
});

test('retries: 0 to 100, their back-off 1 s by default and between 100 ms and 10 minutes', (t) => {
  const { spec: out } = validateSubmission(spec({ retries: 3 }), DEFAULT_SPEC_POLICY, runtimes);
  t.is(out.retries, 3);
  t.deepEqual(out.retryBackoff, { seconds: 1n, nanos: 0 });
  refuses(t, spec({ retries: -1 }), /spec\.retries is -1: must be a whole number between 0 and 100/);
  refuses(t, spec({ retries: 101 }), /spec\.retries is 101/);
  refuses(t, spec({ retries: 1, retryBackoff: { seconds: 0n, nanos: 50_000_000 } }), /spec\.retry_backoff is 50ms: at least 100ms/);
  refuses(t, spec({ retries: 1, retryBackoff: { seconds: 3600n, nanos: 0 } }), /spec\.retry_backoff is 1h, above this server's maximum of 10m/);
});

test('not_before: any time up to a year ahead; a past one is kept (it means at once)', (t) => {
  const soon = new Date(Date.now() + 60_000);
  t.deepEqual(validateSubmission(spec({ notBefore: soon }), DEFAULT_SPEC_POLICY, runtimes).spec.notBefore, soon);
  t.truthy(validateSubmission(spec({ notBefore: new Date(0) }), DEFAULT_SPEC_POLICY, runtimes).spec.notBefore);
  refuses(t, spec({ notBefore: new Date(Date.now() + 400 * 86_400_000) }), /spec\.not_before is .*: at most a year from now/);
});
