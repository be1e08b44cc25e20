// Turns `gridctl run` flags and operands into a JobSpec. Pure, so every flag's
// meaning is unit-tested without a server; the server validates it again.
import type { InputFile, JobSpec } from '../common/gen/grid/v1/job.js';
import { msToDuration } from '../common/units.js';
import type { LabelConstraint } from '../common/label-constraints.js';

export interface RunFlags {
  image?: string;
  env: string[];
  /** Names whose values, from this shell, only the job sees (spec.secret_env). */
  secretEnv?: string[];
  cpu?: number;
  memory?: number;
  timeout?: number;
  runtime?: string;
  workdir?: string;
  maxAttempts?: number;
  priority?: number;
  /** --constraint: labels a node must have (or not). */
  constraint?: LabelConstraint[];
  /** --prefer: labels preferred. */
  prefer?: LabelConstraint[];
  queueTimeout?: number;
  /** --retries: runs again on failure, this many times at most. */
  retries?: number;
  /** --retry-backoff, ms. */
  retryBackoff?: number;
  /** --in: start no earlier than this many ms from now. */
  in?: number;
  /** --at: start no earlier than this time. */
  at?: Date;
  stopSignal?: string;
  stopGrace?: number;
}

export type Workload =
  | { kind: 'command'; argv: string[] }
  | { kind: 'script'; name: string; content: Buffer; args: string[]; requirements?: Buffer };

/**
 * Reads `gridctl run` operands: everything after `--` is the command, unless a
 * script comes before `--`, in which case what follows are the script's args.
 */
export function splitRunOperands(operands: string[], afterDashDash: string[] | undefined): { script?: string; rest: string[] } {
  if (afterDashDash && afterDashDash.length === operands.length) return { rest: afterDashDash };
  const [script, ...rest] = operands;
  return { script, rest };
}

/** --at's TIME: an ISO 8601 time (2026-12-04T09:00:00Z, or local without the zone), or HH:MM today (tomorrow if past). */
export function parseStartTime(text: string, now: Date = new Date()): Date {
  const clock = /^(\d{1,2}):(\d{2})$/.exec(text);
  if (clock) {
    const at = new Date(now);
    at.setHours(Number(clock[1]), Number(clock[2]), 0, 0);
    if (Number(clock[1]) > 23 || Number(clock[2]) > 59) throw new Error(`"${text}" is not a time of day`);
    if (at.getTime() <= now.getTime()) at.setDate(at.getDate() + 1);
    return at;
  }
  const at = /^\d{4}-\d{2}-\d{2}/.test(text) ? new Date(text) : new Date(NaN);
  if (Number.isNaN(at.getTime())) throw new Error(`"${text}" is not a time: give e.g. 2026-12-04T09:00:00Z, 2026-12-04 09:00 or 09:00`);
  return at;
}

export function parseEnv(pairs: string[], localEnv: NodeJS.ProcessEnv): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq === 0) throw new Error(`--env "${pair}" has no name before "="`);
    if (eq > 0) {
      env[pair.slice(0, eq)] = pair.slice(eq + 1);
    } else {
      // `--env NAME` passes this shell's value, as `docker run -e NAME` does.
      const value = localEnv[pair];
      if (value === undefined) throw new Error(`--env ${pair}: ${pair} is not set here; use --env ${pair}=VALUE`);
      env[pair] = value;
    }
  }
  return env;
}

/**
 * `--secret-env NAME`: the value comes from this shell only, never from the
 * command line, where `ps` and shell history would show it.
 */
export function parseSecretEnv(names: string[], localEnv: NodeJS.ProcessEnv): Record<string, string> {
  const secrets: Record<string, string> = {};
  for (const name of names) {
    if (name.includes('=')) {
      throw new Error(`--secret-env takes a NAME, not NAME=VALUE (a value on the command line shows in \`ps\`): export ${name.slice(0, name.indexOf('='))} and pass its name`);
    }
    const value = localEnv[name];
    if (value === undefined) throw new Error(`--secret-env ${name}: ${name} is not set here; export it first`);
    secrets[name] = value;
  }
  return secrets;
}

export function buildSpec(
  flags: RunFlags,
  workload: Workload,
  localEnv: NodeJS.ProcessEnv = process.env,
  inputs: InputFile[] = [],
  stdin: Buffer = Buffer.alloc(0),
  now: number = Date.now(),
): JobSpec {
  if (flags.in !== undefined && flags.at !== undefined) throw new Error('give --in or --at, not both');
  return {
    image: flags.image ?? '',
    command: workload.kind === 'command' ? workload.argv : [],
    script:
      workload.kind === 'script'
        ? { name: workload.name, content: workload.content, runtime: flags.runtime ?? '' }
        : undefined,
    args: workload.kind === 'script' ? workload.args : [],
    env: parseEnv(flags.env, localEnv),
    secretEnv: parseSecretEnv(flags.secretEnv ?? [], localEnv),
    workingDir: flags.workdir ?? '',
    resources: flags.cpu !== undefined || flags.memory !== undefined ? { cpus: flags.cpu ?? 0, memoryBytes: BigInt(flags.memory ?? 0) } : undefined,
    timeout: flags.timeout !== undefined ? msToDuration(flags.timeout) : undefined,
    maxAttempts: flags.maxAttempts ?? 0,
    queueTimeout: flags.queueTimeout !== undefined ? msToDuration(flags.queueTimeout) : undefined,
    stopSignal: flags.stopSignal ?? '',
    stopGrace: flags.stopGrace !== undefined ? msToDuration(flags.stopGrace) : undefined,
    inputs,
    requirements: workload.kind === 'script' && workload.requirements ? workload.requirements : Buffer.alloc(0),
    stdin,
    priority: flags.priority ?? 0,
    constraints: flags.constraint ?? [],
    affinities: flags.prefer ?? [],
    retries: flags.retries ?? 0,
    retryBackoff: flags.retryBackoff !== undefined ? msToDuration(flags.retryBackoff) : undefined,
    notBefore: flags.at ?? (flags.in !== undefined ? new Date(now + flags.in) : undefined),
  };
}
