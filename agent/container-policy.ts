// How this node hardens every job's container: the agent's policy, never the
// job spec's (a spec can ask for resources, not for privileges). Pure: the
// Docker HostConfig fields that follow from the policy and the task.
import type { Task } from '../common/gen/grid/v1/agent.js';

export interface ContainerPolicy {
  /**
   * Capabilities given back after dropping all of them (Docker names: CHOWN,
   * NET_BIND_SERVICE...). Empty by default: a job's root can write its own
   * files but not change owners, bind low ports or trace processes.
   */
  capAdd: string[];
  /** Docker network of job containers: Grid's own (see job-network.ts), "bridge", "none" or another network. */
  network: string;
  /** Root filesystem read-only; /tmp and /grid stay writable. */
  readOnlyRootfs: boolean;
  /** User (uid[:gid] or a name in the image) jobs run as; empty: the image's. */
  user: string;
  /** Processes a container may have when its task names no limit. */
  pidsLimit: number;
}

export const DEFAULT_CONTAINER_POLICY: ContainerPolicy = { capAdd: [], network: 'grid-jobs', readOnlyRootfs: false, user: '', pidsLimit: 4096 };

const CAPABILITY = /^[A-Z][A-Z0-9_]*$/;
/** Capabilities that make a container root on the host in all but name. */
const NEVER = new Set(['SYS_ADMIN', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_PTRACE', 'SYS_BOOT', 'MAC_ADMIN', 'MAC_OVERRIDE', 'DAC_READ_SEARCH', 'BPF', 'PERFMON', 'ALL']);

/** Parses the --cap-add list: Docker's names, with or without CAP_; the ones that undo the sandbox are refused. */
export function parseCapabilities(text: string): string[] {
  const caps = text.split(',').map((c) => c.trim().toUpperCase().replace(/^CAP_/, '')).filter(Boolean);
  for (const cap of caps) {
    if (!CAPABILITY.test(cap)) throw new Error(`"${cap}" is not a capability name (e.g. CHOWN, NET_BIND_SERVICE)`);
    if (NEVER.has(cap)) throw new Error(`${cap} would give jobs control of the host; Grid does not grant it`);
  }
  return [...new Set(caps)];
}

/** The security-relevant part of a job container's HostConfig. */
export function hardenedHostConfig(policy: ContainerPolicy, task: Task) {
  const memory = Number(task.memoryBytes);
  return {
    Memory: memory,
    // Equal to Memory: no swap on top, so the memory limit is the limit.
    MemorySwap: memory,
    NanoCpus: Math.round(task.cpus * 1e9),
    PidsLimit: Number(task.pidsLimit) || policy.pidsLimit,
    Privileged: false,
    CapDrop: ['ALL'],
    CapAdd: policy.capAdd,
    SecurityOpt: ['no-new-privileges:true'],
    NetworkMode: policy.network,
    ReadonlyRootfs: policy.readOnlyRootfs,
    // A read-only root still needs a scratch /tmp.
    Tmpfs: policy.readOnlyRootfs ? { '/tmp': 'rw,nosuid,nodev,size=64m' } : undefined,
    // Nothing of the host: no binds, devices or host namespaces, whatever the image asks.
    Binds: [],
    Devices: [],
    IpcMode: 'private',
    // Without an init the command is PID 1 and ignores SIGTERM by default.
    Init: true,
  };
}
