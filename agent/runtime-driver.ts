// The container runtime behind the agent. The task runner only talks to this
// interface, so another driver (a plain-process dev driver where no Docker engine
// exists) can slot in without touching the lifecycle code.
import type { Task } from '../common/gen/grid/v1/agent.js';
import { EndReason, LogStream } from '../common/gen/grid/v1/job.js';
import type { PullSummary } from './pull-progress.js';

export interface TaskExit {
  exitCode: number;
  oomKilled: boolean;
  startedAt: Date;
  finishedAt: Date;
}

export interface RunningTask {
  /** The runtime's id for it (the container id). */
  readonly id: string;
  readonly startedAt: Date;
  /** Resolves once the process has exited and all of its output was delivered. */
  readonly exited: Promise<TaskExit>;
  /**
   * `signal` (SIGTERM by default), `graceMs` to exit, then SIGKILL. Resolves
   * once the process is signalled to death or gone; false when it had already
   * exited on its own.
   */
  stop(graceMs: number, signal?: string): Promise<boolean>;
}

export type OutputSink = (stream: LogStream, data: Buffer) => void;

export interface StartHooks {
  /** Aborted when the attempt is cancelled before it runs: a pull in progress stops. */
  signal: AbortSignal;
  /** Progress of pulling the task's image, when it is not on the node yet; `done` once, when it is. */
  onPullProgress: (summary: PullSummary, done: boolean) => void;
}

export interface TaskLabels {
  jobId: string;
  attempt: number;
  nodeId: string;
}

/** A task this node's driver left running (or exited) before an agent restart. */
export interface FoundTask {
  id: string;
  labels: TaskLabels;
  /** The run timeout it was started with (0: none). */
  timeoutMs: number;
  stopSignal: string;
  stopGraceMs: number;
  outputCapBytes: number;
  outputFilesCapBytes: number;
  /** created: never started; running; exited: ended while no agent watched. */
  state: 'created' | 'running' | 'exited';
}

export interface RuntimeDriver {
  /** Checks the runtime is reachable and ready (the job network in place); throws a message a person can act on. */
  prepare(): Promise<void>;
  /**
   * Prepares and starts the task; its output goes to `onOutput` from the first
   * byte. Throws TaskStartError when it cannot run, TaskAbortedError when
   * `hooks.signal` stopped it first.
   */
  start(labels: TaskLabels, task: Task, onOutput: OutputSink, hooks: StartHooks): Promise<RunningTask>;
  /** A tar archive of what the exited task left under /grid/out (paths relative to it); undefined when none. */
  collectOutputs(task: { id: string }): Promise<AsyncIterable<Buffer> | undefined>;
  /** Removes what start() left behind, after the exit was recorded. */
  remove(task: { id: string }): Promise<void>;
  /** The tasks of this node that exist in the runtime, e.g. after an agent restart. */
  list(nodeId: string): Promise<FoundTask[]>;
  /** Takes a found task up again: its output from the first byte, and its exit. */
  reattach(found: FoundTask, onOutput: OutputSink): Promise<RunningTask>;
}

/** A task that could not be started, with the reason the job ends with. */
export class TaskStartError extends Error {
  constructor(
    readonly reason: EndReason.END_REASON_IMAGE_UNAVAILABLE | EndReason.END_REASON_START_FAILED,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TaskStartError';
  }
}

/** A start given up because the attempt was cancelled while preparing (e.g. pulling). */
export class TaskAbortedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TaskAbortedError';
  }
}
