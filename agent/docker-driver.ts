// Runs tasks as Docker containers through dockerode. Attaches before starting so
// no output is missed, keeps stdout and stderr apart (no TTY), and removes the
// container itself after the exit is recorded (AutoRemove races with wait()).
import Docker from 'dockerode';
import type { Logger } from 'pino';
import tar from 'tar-stream';
import { stripFirstComponent } from '../common/tar-archive.js';
import { imageRefusal } from './image-policy.js';
import type { Task, TaskFile } from '../common/gen/grid/v1/agent.js';
import { EndReason, LogStream } from '../common/gen/grid/v1/job.js';
import { durationToMs } from '../common/units.js';
import { pullImage } from './image-pull.js';
import { hardenedHostConfig, type ContainerPolicy } from './container-policy.js';
import { prepareJobNetwork } from './job-network.js';
import { maskSecrets } from './secret-masker.js';
import {
  TaskAbortedError,
  TaskStartError,
  type FoundTask,
  type OutputSink,
  type RunningTask,
  type RuntimeDriver,
  type StartHooks,
  type TaskExit,
  type TaskLabels,
} from './runtime-driver.js';

export type PullPolicy = 'missing' | 'never';

export interface DockerDriverOptions {
  socketPath: string;
  pull: PullPolicy;
  /** Image reference prefixes this node runs; empty: any. */
  allowedImages: string[];
  /** A pull that reports nothing for this long is given up; 0: no limit. */
  pullStallMs: number;
  /** How every container is hardened (capabilities, network, user...). */
  containerPolicy: ContainerPolicy;
  log: Logger;
}

export const LABEL_JOB_ID = 'dev.grid.job-id';
export const LABEL_ATTEMPT = 'dev.grid.attempt';
export const LABEL_NODE_ID = 'dev.grid.node-id';
export const LABEL_TIMEOUT_MS = 'dev.grid.timeout-ms';
export const LABEL_STOP_SIGNAL = 'dev.grid.stop-signal';
export const LABEL_STOP_GRACE_MS = 'dev.grid.stop-grace-ms';
export const LABEL_OUTPUT_CAP = 'dev.grid.output-cap-bytes';
export const LABEL_OUTPUT_FILES_CAP = 'dev.grid.output-files-cap-bytes';
export const LABEL_SECRET_ENV = 'dev.grid.secret-env-names';

export function createDockerDriver(options: DockerDriverOptions): RuntimeDriver {
  const docker = new Docker({ socketPath: options.socketPath });
  const log = options.log;
  const policy = options.containerPolicy;

  async function ensureImage(image: string, hooks: StartHooks): Promise<void> {
    try {
      await docker.getImage(image).inspect();
      return;
    } catch (err) {
      if (statusOf(err) !== 404) throw new TaskStartError(EndReason.END_REASON_START_FAILED, `cannot inspect image ${image}: ${messageOf(err)}`, { cause: err });
    }
    if (options.pull === 'never') {
      throw new TaskStartError(EndReason.END_REASON_IMAGE_UNAVAILABLE, `image ${image} is not on node and this agent does not pull images (--pull never)`);
    }
    const startedAt = Date.now();
    try {
      await pullImage(docker, image, { signal: hooks.signal, stallMs: options.pullStallMs, onProgress: hooks.onPullProgress });
      log.info({ image, ms: Date.now() - startedAt }, 'pulled image');
    } catch (err) {
      if (err instanceof TaskAbortedError) throw err;
      throw new TaskStartError(
        EndReason.END_REASON_IMAGE_UNAVAILABLE,
        `image ${image} is not on the node and could not be pulled: ${messageOf(err)}`,
        { cause: err },
      );
    }
  }

  return {
    async prepare() {
      try {
        await docker.ping();
      } catch (err) {
        throw new Error(
          `cannot reach the Docker engine at ${options.socketPath} (${messageOf(err)}). ` +
            'Is Docker installed and running? On Debian/Ubuntu: `apt-get install -y docker.io` then ' +
            '`systemctl start docker` (or run `dockerd &`); or point --docker-socket / GRID_DOCKER_SOCKET at it.',
          { cause: err },
        );
      }
      await prepareJobNetwork(docker, policy.network, log);
    },

    async start(labels: TaskLabels, task: Task, onOutput: OutputSink, hooks: StartHooks): Promise<RunningTask> {
      const refusal = imageRefusal(task.image, options.allowedImages);
      if (refusal) throw new TaskStartError(EndReason.END_REASON_IMAGE_UNAVAILABLE, refusal);
      await ensureImage(task.image, hooks);
      // A cancel that came while preparing: the user's command must not run at all.
      if (hooks.signal.aborted) throw new TaskAbortedError('cancelled before it started');
      let container: Docker.Container;
      try {
        container = await docker.createContainer({
          name: `grid-${labels.jobId}-${labels.attempt}`,
          Image: task.image,
          Cmd: task.argv,
          Env: [
            ...Object.entries(task.env).map(([k, v]) => `${k}=${v}`),
            `GRID_JOB_ID=${labels.jobId}`,
            `GRID_ATTEMPT=${labels.attempt}`,
          ],
          WorkingDir: task.workingDir || undefined,
          Labels: {
            [LABEL_JOB_ID]: labels.jobId,
            [LABEL_ATTEMPT]: String(labels.attempt),
            [LABEL_NODE_ID]: labels.nodeId,
            [LABEL_TIMEOUT_MS]: String(durationToMs(task.timeout)),
            [LABEL_STOP_SIGNAL]: task.stopSignal || 'SIGTERM',
            [LABEL_STOP_GRACE_MS]: String(durationToMs(task.stopGrace)),
            [LABEL_OUTPUT_CAP]: String(task.outputCapBytes),
            [LABEL_OUTPUT_FILES_CAP]: String(task.outputFilesCapBytes),
            // Names only: after an agent restart, which values to mask in the output read again.
            [LABEL_SECRET_ENV]: task.secretEnvNames.join(','),
          },
          Tty: false,
          // Standard input only for a task that brings some: written once, then closed (StdinOnce).
          OpenStdin: task.stdin.length > 0,
          StdinOnce: task.stdin.length > 0,
          AttachStdin: task.stdin.length > 0,
          AttachStdout: true,
          AttachStderr: true,
          User: policy.user || undefined,
          HostConfig: {
            ...hardenedHostConfig(policy, task),
            Mounts: [
              ...task.cacheMounts.map((m) => ({ Type: 'volume' as const, Source: cacheVolume(m.name), Target: m.path })),
              // A read-only root cannot take /grid: it gets a volume of its own, removed with the container.
              ...(policy.readOnlyRootfs ? [{ Type: 'volume' as const, Source: '', Target: '/grid' }] : []),
            ],
          },
        });
      } catch (err) {
        // 404: the image went away since it was checked (removed by someone else).
        const reason = statusOf(err) === 404 ? EndReason.END_REASON_IMAGE_UNAVAILABLE : EndReason.END_REASON_START_FAILED;
        throw new TaskStartError(reason, `cannot create the container: ${messageOf(err)}`, { cause: err });
      }
      let input: (NodeJS.ReadWriteStream & { destroy(): void }) | undefined;
      try {
        // /grid/in (script, inputs) and a writable /grid/out exist in every container.
        const root = policy.readOnlyRootfs ? '/grid' : '/';
        await container.putArchive(await tarOf(task.files, root), { path: root });
        const stream = await container.attach({ stream: true, stdout: true, stderr: true });
        const masker = maskSecrets(task.secretEnvNames.map((name) => task.env[name] ?? ''), onOutput);
        const drained = demux(container, stream, masker.sink).then(() => masker.flush());
        // Registered before start so a fast exit is not missed; 'next-exit' because
        // the default condition answers at once for a container not yet started.
        const { exit: waited } = await waitRegistered(container);
        // Its own hijacked connection, apart from the output's: ending it closes the process's stdin.
        input = task.stdin.length > 0 ? ((await container.attach({ stream: true, stdin: true, hijack: true })) as NodeJS.ReadWriteStream & { destroy(): void }) : undefined;
        // A process that exits without reading all of it breaks the pipe: that is its choice, not an error.
        input?.on('error', (err) => log.debug({ err }, 'standard input not taken in full'));
        if (hooks.signal.aborted) throw new TaskAbortedError('cancelled before it started');
        await container.start();
        input?.end(Buffer.from(task.stdin));
        return runningTask(container, waited, drained, new Date());
      } catch (err) {
        input?.destroy();
        await container.remove({ force: true, v: true }).catch(() => {});
        if (err instanceof TaskStartError || err instanceof TaskAbortedError) throw err;
        throw new TaskStartError(EndReason.END_REASON_START_FAILED, `cannot start the container: ${messageOf(err)}`, { cause: err });
      }
    },

    async list(nodeId: string): Promise<FoundTask[]> {
      const containers = await docker.listContainers({ all: true, filters: { label: [`${LABEL_NODE_ID}=${nodeId}`] } });
      return containers.map((c) => ({
        id: c.Id,
        labels: { jobId: c.Labels[LABEL_JOB_ID]!, attempt: Number(c.Labels[LABEL_ATTEMPT]), nodeId },
        timeoutMs: Number(c.Labels[LABEL_TIMEOUT_MS] ?? 0),
        stopSignal: c.Labels[LABEL_STOP_SIGNAL] ?? 'SIGTERM',
        stopGraceMs: Number(c.Labels[LABEL_STOP_GRACE_MS] ?? 10_000),
        outputCapBytes: Number(c.Labels[LABEL_OUTPUT_CAP] ?? Infinity),
        outputFilesCapBytes: Number(c.Labels[LABEL_OUTPUT_FILES_CAP] ?? 0),
        state: c.State === 'created' ? 'created' : c.State === 'running' || c.State === 'paused' || c.State === 'restarting' ? 'running' : 'exited',
      }));
    },

    async reattach(found: FoundTask, onOutput: OutputSink): Promise<RunningTask> {
      const container = docker.getContainer(found.id);
      const info = await container.inspect();
      const startedAt = parseDockerTime(info.State.StartedAt) ?? new Date();
      // The whole output again from the first byte: the control plane keeps only
      // the bytes it does not have yet, so nothing is missed or doubled.
      const stream = (await container.logs({ follow: true, stdout: true, stderr: true })) as NodeJS.ReadableStream;
      // The secrets to mask: the names from the label, their values from the container's own env.
      const names = new Set((info.Config.Labels?.[LABEL_SECRET_ENV] ?? '').split(',').filter(Boolean));
      const values = (info.Config.Env ?? []).flatMap((e) => (names.has(e.slice(0, e.indexOf('='))) ? [e.slice(e.indexOf('=') + 1)] : []));
      const masker = maskSecrets(values, onOutput);
      const drained = demux(container, stream, masker.sink).then(() => masker.flush());
      return runningTask(container, container.wait(), drained, startedAt);
    },

    async collectOutputs(task: { id: string }) {
      try {
        const archive = await docker.getContainer(task.id).getArchive({ path: '/grid/out' });
        return stripFirstComponent(archive);
      } catch (err) {
        if (statusOf(err) === 404) return undefined;
        throw err;
      }
    },

    async remove(task: { id: string }) {
      try {
        // v: the anonymous /grid volume of a read-only container goes with it (named cache volumes stay).
        await docker.getContainer(task.id).remove({ force: true, v: true });
      } catch (err) {
        if (statusOf(err) !== 404 && statusOf(err) !== 409) log.warn({ err, container: task.id }, 'cannot remove container');
      }
    },
  };
}

/** Splits Docker's multiplexed stream into the two outputs; resolves when it ends. */
function demux(container: Docker.Container, stream: NodeJS.ReadableStream, onOutput: OutputSink): Promise<void> {
  const drained = new Promise<void>((resolve) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', resolve);
  });
  container.modem.demuxStream(
    stream,
    { write: (data: Buffer) => onOutput(LogStream.LOG_STREAM_STDOUT, data) } as NodeJS.WritableStream,
    { write: (data: Buffer) => onOutput(LogStream.LOG_STREAM_STDERR, data) } as NodeJS.WritableStream,
  );
  return drained;
}

/**
 * Asks Docker to wait for the container's next exit, and resolves once Docker
 * has taken the request (it sends the headers then, the body at the exit).
 * Sending a wait is not enough: under load the engine can take a start sent
 * after it first, and a process that exits at once would leave a 'next-exit'
 * wait hanging for an exit that already happened. The Docker CLI relies on the
 * same ordering.
 */
function waitRegistered(container: Docker.Container): Promise<{ exit: Promise<{ StatusCode: number }> }> {
  return new Promise((resolve, reject) => {
    container.modem.dial(
      {
        path: `/containers/${container.id}/wait?`,
        method: 'POST',
        options: { condition: 'next-exit' },
        isStream: true,
        statusCodes: { 200: true, 400: 'bad parameter', 404: 'no such container', 500: 'server error' },
      },
      (err: Error | null, stream: NodeJS.ReadableStream) => {
        if (err) return reject(err);
        const exit = new Promise<{ StatusCode: number }>((resolveExit, rejectExit) => {
          const parts: Buffer[] = [];
          stream.on('data', (d: Buffer) => parts.push(d));
          stream.on('error', rejectExit);
          stream.on('end', () => {
            try {
              resolveExit(JSON.parse(Buffer.concat(parts).toString()) as { StatusCode: number });
            } catch (parseErr) {
              rejectExit(new Error(`unreadable answer to wait: ${(parseErr as Error).message}`));
            }
          });
        });
        // A start that fails after this leaves the exit unawaited: never an unhandled rejection.
        exit.catch(() => undefined);
        // Wrapped: a promise resolved with a promise would wait for the exit.
        resolve({ exit });
      },
    );
  });
}

function runningTask(container: Docker.Container, waited: Promise<unknown>, drained: Promise<void>, startedAt: Date): RunningTask {
  let stopped = false;
  const exited = watchExit(container, waited, drained, startedAt, () => stopped);
  return {
    id: container.id,
    startedAt,
    exited,
    stop: (graceMs, signal) => {
      stopped = true;
      return stopContainer(container, graceMs, exited, signal);
    },
  };
}

const OOM_FLAG_CHECKS = 5;
const OOM_FLAG_CHECK_MS = 100;

/**
 * The exit, once the process ended and all of its output was delivered. Docker
 * sets State.OOMKilled from an OOM event that can arrive after the exit: a
 * SIGKILL (137) nobody here sent is looked at again for a moment before it is
 * taken for a plain failure.
 */
async function watchExit(
  container: Docker.Container,
  waited: Promise<unknown>,
  drained: Promise<void>,
  startedAt: Date,
  stopped: () => boolean,
): Promise<TaskExit> {
  const { StatusCode } = (await waited) as { StatusCode: number };
  await drained;
  let info = await container.inspect();
  for (let i = 0; i < OOM_FLAG_CHECKS && StatusCode === 137 && !info.State.OOMKilled && !stopped(); i++) {
    await new Promise((resolve) => setTimeout(resolve, OOM_FLAG_CHECK_MS));
    info = await container.inspect();
  }
  const started = parseDockerTime(info.State.StartedAt) ?? startedAt;
  const finished = parseDockerTime(info.State.FinishedAt) ?? new Date();
  return {
    exitCode: StatusCode,
    oomKilled: info.State.OOMKilled,
    startedAt: started,
    // Docker stamps StartedAt after the process began, so a process that exits
    // at once can show a FinishedAt before it: clamp to zero length.
    finishedAt: finished < started ? started : finished,
  };
}

/** The stop signal, then SIGKILL after the grace unless the process is gone first. */
async function stopContainer(
  container: Docker.Container,
  graceMs: number,
  exited: Promise<unknown>,
  stopSignal = 'SIGTERM',
): Promise<boolean> {
  if (graceMs > 0 && stopSignal !== 'SIGKILL') {
    if (!(await signal(container, stopSignal))) return false;
    let timer: NodeJS.Timeout | undefined;
    const gone = await Promise.race([
      exited.then(() => true, () => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), graceMs))),
    ]);
    clearTimeout(timer);
    if (gone) return true;
  }
  return (await signal(container, 'SIGKILL')) || graceMs > 0;
}

/** Returns false when the container is no longer running (Docker answers 409/404). */
async function signal(container: Docker.Container, name: string): Promise<boolean> {
  try {
    await container.kill({ signal: name });
    return true;
  } catch (err) {
    if (statusOf(err) === 409 || statusOf(err) === 404) return false;
    throw err;
  }
}

/** The task's files as a tar archive to extract at `root`: "/", or "/grid" itself when that is a volume. */
function tarOf(files: TaskFile[], root: '/' | '/grid'): Promise<Buffer> {
  const pack = tar.pack();
  const under = (path: string) => (root === '/grid' ? path.replace(/^grid\//, '') : path);
  pack.entry({ name: under('grid/in'), type: 'directory', mode: 0o755, mtime: new Date() });
  pack.entry({ name: under('grid/out'), type: 'directory', mode: 0o777, mtime: new Date() });
  const dirs = new Set<string>();
  for (const f of files) {
    const parts = f.path.replace(/^\/+/, '').split('/').slice(0, -1);
    for (let i = 3; i <= parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!dirs.has(dir)) pack.entry({ name: under(dir), type: 'directory', mode: 0o755, mtime: new Date() });
      dirs.add(dir);
    }
  }
  for (const f of files) {
    pack.entry({ name: under(f.path.replace(/^\/+/, '')), mode: f.mode || 0o644, mtime: new Date() }, Buffer.from(f.content));
  }
  pack.finalize();
  const parts: Buffer[] = [];
  return new Promise((resolve, reject) => {
    pack.on('data', (d: unknown) => parts.push(d as Buffer));
    pack.on('end', () => resolve(Buffer.concat(parts)));
    pack.on('error', reject);
  });
}

function parseDockerTime(text: string | undefined): Date | undefined {
  if (!text || text.startsWith('0001-')) return undefined;
  const d = new Date(text);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number }).statusCode;
}

/** Docker's own message rather than dockerode's "(HTTP code 404) no such image - ..." prefix. */
function messageOf(err: unknown): string {
  const json = (err as { json?: { message?: string } }).json;
  return json?.message ?? (err instanceof Error ? err.message : String(err));
}


/** Only the agent's own cache volumes may be mounted: never a host path, never another volume. */
function cacheVolume(name: string): string {
  if (!/^grid-cache-[a-z0-9][a-z0-9_.-]{0,63}$/.test(name)) {
    throw new TaskStartError(EndReason.END_REASON_START_FAILED, `cache volume "${name}" is not one this agent keeps`);
  }
  return name;
}
