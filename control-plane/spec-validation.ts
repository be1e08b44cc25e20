// Validates a submitted JobSpec and resolves it into the Task a node runs. Pure:
// every refusal is an INVALID_ARGUMENT whose message names the field and says
// what would be accepted, and nothing is stored for a refused spec.
import { DEFAULT_RETRY_BACKOFF_MS, MAX_RETRIES, MAX_RETRY_DELAY_MS } from '../common/retry-policy.js';
import { MAX_PRIORITY, MIN_PRIORITY } from '../common/queue-order.js';
import { JobSpec } from '../common/gen/grid/v1/job.js';
import { LabelOperator, type LabelConstraint } from '../common/label-constraints.js';
import type { CacheMount, Task, TaskFile } from '../common/gen/grid/v1/agent.js';
import { withRequirements } from './python-requirements.js';
import { invalidArgument } from '../common/errors.js';
import type { Duration } from '../common/gen/google/protobuf/duration.js';
import { durationToMs, formatBytes, formatDurationMs, msToDuration, safeNumber } from '../common/units.js';
import { imageReferenceProblem } from './image-reference.js';
import { inferRuntime, type RuntimeTable } from './runtime-presets.js';

export interface SpecPolicy {
  defaultImage: string;
  defaultCpus: number;
  maxCpus: number;
  defaultMemoryBytes: number;
  minMemoryBytes: number;
  maxMemoryBytes: number;
  defaultTimeoutMs: number;
  maxTimeoutMs: number;
  defaultMaxAttempts: number;
  maxAttempts: number;
  maxScriptBytes: number;
  pidsLimit: number;
  defaultQueueTimeoutMs: number;
  maxQueueTimeoutMs: number;
  defaultStopGraceMs: number;
  maxStopGraceMs: number;
  /** Output kept per stream of a job; past it the job runs on and the rest is dropped. */
  outputCapBytes: number;
  /** Input files of one job, in all. */
  maxInputBytes: number;
  /** The /grid/out archive collected from one job. */
  maxOutputFilesBytes: number;
}

export const DEFAULT_SPEC_POLICY: SpecPolicy = {
  defaultImage: 'busybox:1.37',
  defaultCpus: 1,
  maxCpus: 256,
  defaultMemoryBytes: 512 * 1024 ** 2,
  // Docker refuses containers under 6 MiB.
  minMemoryBytes: 6 * 1024 ** 2,
  maxMemoryBytes: 1024 ** 4,
  defaultTimeoutMs: 60 * 60_000,
  maxTimeoutMs: 7 * 24 * 60 * 60_000,
  // One retry, and only when the node is lost: a non-zero exit is never retried.
  defaultMaxAttempts: 2,
  maxAttempts: 10,
  maxScriptBytes: 4 * 1024 ** 2,
  pidsLimit: 4096,
  defaultQueueTimeoutMs: 24 * 60 * 60_000,
  maxQueueTimeoutMs: 7 * 24 * 60 * 60_000,
  defaultStopGraceMs: 10_000,
  maxStopGraceMs: 5 * 60_000,
  outputCapBytes: 16 * 1024 ** 2,
  maxInputBytes: 16 * 1024 ** 2,
  maxOutputFilesBytes: 64 * 1024 ** 2,
};

/** Signals a job may choose to be asked to stop with (SIGKILL always follows the grace). */
export const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGKILL'];

/** Where scripts and input files are placed in the container. */
export const INPUT_DIR = '/grid/in';
const MAX_INPUT_FILES = 10_000;

const MAX_ARGV = 4096;
const MAX_ARG_BYTES = 128 * 1024;
const MAX_ENV = 1024;
const MAX_ENV_NAME = 256;
const MAX_ENV_STRING = 128 * 1024 - 1;
const MAX_ENV_TOTAL = 1024 * 1024;
const MAX_SECRET_BYTES = 64 * 1024;
const MAX_PATH = 4096;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SCRIPT_NAME = /^[A-Za-z0-9._-][A-Za-z0-9._ -]{0,254}$/;

export interface ValidatedSubmission {
  /** The spec as it will run: defaults filled in, runtime and image resolved; secret values replaced by REDACTED. */
  spec: JobSpec;
  /** What the agent runs, without the secret values (delivery adds them: see withSecrets). */
  task: Task;
  /** spec.secret_env's values, to be sealed; never stored or answered in clear. */
  secrets: Record<string, string>;
}

/** What every answer shows in place of a secret env value. */
export const REDACTED = '<redacted>';

/** The task as it is sent to its node: with the secret values it needs in its env. */
export function withSecrets(task: Task, secrets: Record<string, string> | undefined): Task {
  return secrets && Object.keys(secrets).length > 0 ? { ...task, env: { ...task.env, ...secrets } } : task;
}

export function validateSubmission(
  input: JobSpec | undefined,
  policy: SpecPolicy,
  runtimes: RuntimeTable,
): ValidatedSubmission {
  if (!input) throw invalidArgument('spec is missing: give a job spec with a command or a script', 'spec');
  // A copy to fill in (fields, lists, maps and nested messages are new; bytes
  // are shared and never written): a tenth of structuredClone's cost.
  const spec: JobSpec = JobSpec.fromPartial(input);
  const hasCommand = spec.command.length > 0;
  const hasScript = spec.script !== undefined;

  if (hasCommand && hasScript) {
    throw invalidArgument('spec has both a command and a script: give exactly one of them', 'spec');
  }
  if (!hasCommand && !hasScript) {
    throw invalidArgument('spec.command is empty: give the program to run (e.g. ["echo", "hi"]) or a script', 'spec.command');
  }
  if (hasCommand && spec.command[0]!.trim() === '') {
    throw invalidArgument('spec.command[0] is empty: it must name the program to run', 'spec.command[0]');
  }
  checkArgv('spec.command', spec.command);
  checkArgv('spec.args', spec.args);

  let argv: string[];
  const files: TaskFile[] = [];
  const mounts: CacheMount[] = [];
  if (spec.script) {
    const script = spec.script;
    if (!SCRIPT_NAME.test(script.name) || script.name === '.' || script.name === '..') {
      throw invalidArgument(
        `spec.script.name "${script.name}" is not a plain file name (letters, digits, ".", "_", "-"; no slashes)`,
        'spec.script.name',
      );
    }
    if (script.content.length > policy.maxScriptBytes) {
      throw invalidArgument(
        `spec.script.content is ${formatBytes(script.content.length)}, above the limit of ${formatBytes(policy.maxScriptBytes)}`,
        'spec.script.content',
      );
    }
    const known = [...runtimes.keys()].join(', ');
    const preset = script.runtime ? runtimes.get(script.runtime) : inferRuntime(script.name, runtimes);
    if (!preset) {
      throw invalidArgument(
        script.runtime
          ? `spec.script.runtime "${script.runtime}" is unknown; this server has: ${known}`
          : `cannot tell the runtime of "${script.name}" from its extension; set spec.script.runtime to one of: ${known}`,
        'spec.script.runtime',
      );
    }
    script.runtime = preset.name;
    spec.image ||= preset.image;
    const path = `${INPUT_DIR}/${script.name}`;
    files.push({ path, content: script.content, mode: 0o755 });
    argv = [...preset.interpreter, path, ...spec.args];
    if (spec.requirements.length > 0) {
      if (!preset.requirements) {
        throw invalidArgument(`spec.requirements needs a runtime that installs them (python); "${preset.name}" does not`, 'spec.requirements');
      }
      if (spec.requirements.length > 1024 * 1024) throw invalidArgument('spec.requirements is larger than 1 MiB', 'spec.requirements');
      const resolved = withRequirements(spec.requirements, path, spec.args);
      argv = resolved.argv;
      files.push(...resolved.files);
      mounts.push(...resolved.mounts);
    }
  } else {
    if (spec.requirements.length > 0) throw invalidArgument('spec.requirements goes with a python script, not with a command', 'spec.requirements');
    spec.image ||= policy.defaultImage;
    argv = [...spec.command, ...spec.args];
  }

  files.push(...inputFiles(spec, policy, files.map((f) => f.path)));

  const imageProblem = imageReferenceProblem(spec.image);
  if (imageProblem) throw invalidArgument(`spec.image "${spec.image}" is not a valid image reference: ${imageProblem}`, 'spec.image');

  checkEnv('spec.env', spec.env);
  checkEnv('spec.secret_env', spec.secretEnv);
  const secretNames = Object.keys(spec.secretEnv);
  if (Object.keys(spec.env).length + secretNames.length > MAX_ENV) throw invalidArgument(`spec.env and spec.secret_env hold more than ${MAX_ENV} variables`, 'spec.env');
  // Linux refuses to exec with more than ARG_MAX (a quarter of the stack limit, 2 MiB by
  // default) of arguments and environment together: half of it for the environment.
  const envBytes = [...Object.entries(spec.env), ...Object.entries(spec.secretEnv)].reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v) + 2, 0);
  if (envBytes > MAX_ENV_TOTAL) {
    throw invalidArgument(`spec.env and spec.secret_env are ${formatBytes(envBytes)} as "NAME=value" strings; at most ${formatBytes(MAX_ENV_TOTAL)} in all`, 'spec.env');
  }
  // The agent scans every byte of the job's output for each value (secret-masker.ts).
  const secretBytes = Object.values(spec.secretEnv).reduce((n, v) => n + Buffer.byteLength(v), 0);
  if (secretBytes > MAX_SECRET_BYTES) throw invalidArgument(`spec.secret_env values are ${formatBytes(secretBytes)} in all; at most ${formatBytes(MAX_SECRET_BYTES)}`, 'spec.secret_env');
  const both = secretNames.find((name) => name in spec.env);
  if (both) throw invalidArgument(`${both} is in both spec.env and spec.secret_env: give it once`, 'spec.secret_env');
  // The secrets leave the spec here: what is stored and answered has only their names.
  const secrets = spec.secretEnv;
  spec.secretEnv = Object.fromEntries(secretNames.map((name) => [name, REDACTED]));

  if (spec.workingDir.length > MAX_PATH) throw invalidArgument(`spec.working_dir is ${spec.workingDir.length} characters; at most ${MAX_PATH}`, 'spec.working_dir');
  if (spec.workingDir.includes('\0')) throw invalidArgument('spec.working_dir holds a NUL character', 'spec.working_dir');
  if (spec.workingDir && !spec.workingDir.startsWith('/')) {
    throw invalidArgument(`spec.working_dir "${spec.workingDir}" must be an absolute path`, 'spec.working_dir');
  }

  const requestedCpus = spec.resources?.cpus ?? 0;
  const cpus = requestedCpus === 0 ? policy.defaultCpus : requestedCpus;
  if (!Number.isFinite(cpus) || cpus < 0.01 || cpus > policy.maxCpus) {
    throw invalidArgument(`spec.resources.cpus is ${spec.resources?.cpus}: must be between 0.01 and ${policy.maxCpus}`, 'spec.resources.cpus');
  }
  const requested = spec.resources?.memoryBytes ?? 0n;
  const memoryBytes = requested === 0n ? policy.defaultMemoryBytes : safeNumber(requested) ?? Number(requested);
  if (memoryBytes < policy.minMemoryBytes) {
    throw invalidArgument(
      `spec.resources.memory_bytes is ${requested} (${formatBytes(memoryBytes)}): must be at least ${formatBytes(policy.minMemoryBytes)}`,
      'spec.resources.memory_bytes',
    );
  }
  if (memoryBytes > policy.maxMemoryBytes) {
    throw invalidArgument(
      `spec.resources.memory_bytes is ${formatBytes(memoryBytes)}, above this server's maximum of ${formatBytes(policy.maxMemoryBytes)}`,
      'spec.resources.memory_bytes',
    );
  }
  spec.resources = { cpus, memoryBytes: BigInt(memoryBytes) };

  const timeoutMs = boundedDuration('spec.timeout', spec.timeout, policy.defaultTimeoutMs, policy.maxTimeoutMs);
  spec.timeout = msToDuration(timeoutMs);

  const queueTimeoutMs = boundedDuration('spec.queue_timeout', spec.queueTimeout, policy.defaultQueueTimeoutMs, policy.maxQueueTimeoutMs);
  spec.queueTimeout = msToDuration(queueTimeoutMs);
  // An explicit 0 s grace is allowed (kill at once); only unset means the default.
  const stopGraceMs = spec.stopGrace
    ? boundedDuration('spec.stop_grace', spec.stopGrace, undefined, policy.maxStopGraceMs)
    : policy.defaultStopGraceMs;
  spec.stopGrace = msToDuration(stopGraceMs);
  spec.stopSignal = (spec.stopSignal || 'SIGTERM').toUpperCase();
  if (!spec.stopSignal.startsWith('SIG')) spec.stopSignal = `SIG${spec.stopSignal}`;
  if (!STOP_SIGNALS.includes(spec.stopSignal)) {
    throw invalidArgument(`spec.stop_signal "${input.stopSignal}" is not one of ${STOP_SIGNALS.join(', ')}`, 'spec.stop_signal');
  }

  if (!Number.isInteger(spec.priority) || spec.priority < MIN_PRIORITY || spec.priority > MAX_PRIORITY) {
    throw invalidArgument(`spec.priority is ${spec.priority}: must be a whole number between ${MIN_PRIORITY} and ${MAX_PRIORITY}`, 'spec.priority');
  }
  checkLabelTests('spec.constraints', spec.constraints);
  checkLabelTests('spec.affinities', spec.affinities);
  const maxAttempts = spec.maxAttempts || policy.defaultMaxAttempts;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > policy.maxAttempts) {
    throw invalidArgument(`spec.max_attempts is ${spec.maxAttempts}: must be between 1 and ${policy.maxAttempts}`, 'spec.max_attempts');
  }
  spec.maxAttempts = maxAttempts;
  checkRetries(spec);
  if (spec.notBefore && !(spec.notBefore.getTime() <= Date.now() + MAX_NOT_BEFORE_MS)) {
    throw invalidArgument(`spec.not_before is ${spec.notBefore.toISOString()}: at most a year from now`, 'spec.not_before');
  }

  const task: Task = {
    image: spec.image,
    argv,
    env: { ...spec.env },
    workingDir: spec.workingDir,
    cpus,
    memoryBytes: BigInt(memoryBytes),
    timeout: spec.timeout,
    files,
    pidsLimit: BigInt(policy.pidsLimit),
    stopSignal: spec.stopSignal,
    stopGrace: spec.stopGrace,
    outputCapBytes: BigInt(policy.outputCapBytes),
    outputFilesCapBytes: BigInt(policy.maxOutputFilesBytes),
    cacheMounts: mounts,
    secretEnvNames: secretNames,
    stdin: spec.stdin,
  };
  return { spec, task, secrets };
}

/** As many as a hello may carry labels, and keys and values as long (node-identity.ts). */
const MAX_LABEL_TESTS = 16;

function checkLabelTests(field: string, tests: LabelConstraint[]): void {
  if (tests.length > MAX_LABEL_TESTS) throw invalidArgument(`${field} has ${tests.length} entries: at most ${MAX_LABEL_TESTS}`, field);
  for (const [i, c] of tests.entries()) {
    const at = `${field}[${i}]`;
    if (c.key === '') throw invalidArgument(`${at}.key is empty: name the node label to test, e.g. gpu=true`, `${at}.key`);
    if (c.key.length > 128 || c.key.includes('\0')) throw invalidArgument(`${at}.key must be at most 128 characters, with no NUL`, `${at}.key`);
    if (c.value.length > 256 || c.value.includes('\0')) throw invalidArgument(`${at}.value must be at most 256 characters, with no NUL`, `${at}.value`);
    if (c.operator !== LabelOperator.LABEL_OPERATOR_EQUAL && c.operator !== LabelOperator.LABEL_OPERATOR_NOT_EQUAL) {
      throw invalidArgument(`${at}.operator is not set: LABEL_OPERATOR_EQUAL or LABEL_OPERATOR_NOT_EQUAL`, `${at}.operator`);
    }
  }
}

function checkEnv(field: string, env: Record<string, string>): void {
  const names = Object.keys(env);
  if (names.length > MAX_ENV) throw invalidArgument(`${field} has ${names.length} variables; at most ${MAX_ENV}`, field);
  for (const [name, value] of Object.entries(env)) {
    if (name.length > MAX_ENV_NAME) throw invalidArgument(`${field} name of ${name.length} characters is too long: at most ${MAX_ENV_NAME}`, field);
    // Linux refuses to start a process with a longer "NAME=value" string (MAX_ARG_STRLEN, NUL included).
    const bytes = Buffer.byteLength(name) + 1 + Buffer.byteLength(value);
    if (bytes > MAX_ENV_STRING) {
      throw invalidArgument(`${field} ${name} is ${bytes} bytes as "${name}=value"; a process's environment string may be at most ${MAX_ENV_STRING}`, field);
    }
    if (!ENV_NAME.test(name)) {
      throw invalidArgument(`${field} name "${name}" is not valid: use letters, digits and "_", not starting with a digit`, field);
    }
    if (value.includes('\0')) throw invalidArgument(`${field} ${name} contains a NUL byte`, field);
  }
}

function checkArgv(field: string, argv: string[]): void {
  if (argv.length > MAX_ARGV) throw invalidArgument(`${field} has ${argv.length} entries; at most ${MAX_ARGV}`, field);
  let bytes = 0;
  for (const [i, arg] of argv.entries()) {
    if (arg.includes('\0')) throw invalidArgument(`${field}[${i}] contains a NUL byte`, `${field}[${i}]`);
    bytes += Buffer.byteLength(arg);
  }
  if (bytes > MAX_ARG_BYTES) throw invalidArgument(`${field} is ${formatBytes(bytes)} long; at most ${formatBytes(MAX_ARG_BYTES)}`, field);
}

/**
 * A duration field: unset or zero means the default (when there is one);
 * negative or above the maximum is refused.
 */
const MIN_RETRY_BACKOFF_MS = 100;
const MAX_NOT_BEFORE_MS = 365 * 86_400_000;

/** spec.retries within bounds, and its back-off set (the default when unset). */
function checkRetries(spec: JobSpec): void {
  if (!Number.isInteger(spec.retries) || spec.retries < 0 || spec.retries > MAX_RETRIES) {
    throw invalidArgument(`spec.retries is ${spec.retries}: must be a whole number between 0 and ${MAX_RETRIES}`, 'spec.retries');
  }
  const backoffMs = boundedDuration('spec.retry_backoff', spec.retryBackoff, DEFAULT_RETRY_BACKOFF_MS, MAX_RETRY_DELAY_MS);
  if (backoffMs < MIN_RETRY_BACKOFF_MS) {
    throw invalidArgument(`spec.retry_backoff is ${formatDurationMs(backoffMs)}: at least ${formatDurationMs(MIN_RETRY_BACKOFF_MS)}`, 'spec.retry_backoff');
  }
  spec.retryBackoff = msToDuration(backoffMs);
}

export function boundedDuration(field: string, value: Duration | undefined, defaultMs: number | undefined, maxMs: number): number {
  if (value && (value.seconds < 0n || value.nanos < 0)) {
    throw invalidArgument(`${field} is negative: give a positive duration, or none for the server default`, field);
  }
  const ms = durationToMs(value) || (defaultMs ?? 0);
  if (ms > maxMs) {
    throw invalidArgument(`${field} is ${formatDurationMs(ms)}, above this server's maximum of ${formatDurationMs(maxMs)}`, field);
  }
  return ms;
}

/** Input files as task files under /grid/in: relative, no "..", size-capped (with stdin). */
function inputFiles(spec: JobSpec, policy: SpecPolicy, taken: string[]): TaskFile[] {
  if (spec.inputs.length > MAX_INPUT_FILES) {
    throw invalidArgument(`spec.inputs has ${spec.inputs.length} files; at most ${MAX_INPUT_FILES}`, 'spec.inputs');
  }
  // stdin counts against the same limit: it is input too, stored with the job.
  let total = spec.stdin.length;
  const tooMuch = () =>
    invalidArgument(`${spec.stdin.length > 0 ? 'spec.stdin and spec.inputs add' : 'spec.inputs add'} up to more than this server's limit of ${formatBytes(policy.maxInputBytes)}`, 'spec.inputs');
  if (total > policy.maxInputBytes) throw tooMuch();
  const seen = new Set(taken);
  return spec.inputs.map((input, i) => {
    if (input.path.length > MAX_PATH) throw invalidArgument(`spec.inputs[${i}].path is ${input.path.length} characters; at most ${MAX_PATH}`, `spec.inputs[${i}].path`);
    const parts = input.path.split('/');
    if (!input.path || input.path.startsWith('/') || parts.some((p) => p === '' || p === '.' || p === '..') || input.path.includes('\0')) {
      throw invalidArgument(`spec.inputs[${i}].path "${input.path}" must be a relative path without "." or ".." parts`, `spec.inputs[${i}].path`);
    }
    const path = `${INPUT_DIR}/${input.path}`;
    if (seen.has(path)) throw invalidArgument(`spec.inputs[${i}].path "${input.path}" is given twice (or clashes with the script)`, `spec.inputs[${i}].path`);
    seen.add(path);
    total += input.content.length;
    if (total > policy.maxInputBytes) throw tooMuch();
    return { path, content: Buffer.from(input.content), mode: input.mode & 0o777 || 0o644 };
  });
}
