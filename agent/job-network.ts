// The network job containers join. Grid's own bridge ("grid-jobs", interface
// grid-jobs0) reaches the outside world like Docker's default one, but:
// - a job cannot open a connection to this host (its control plane's port,
//   PostgreSQL, the agent's own, sshd...): one iptables rule rejects new
//   connections that arrive from the bridge for the host itself;
// - jobs cannot reach each other (inter-container traffic is off).
// Both are host set-up, made once and kept (as Docker keeps docker0): every
// agent start checks them, and several agents on one engine share them.
import { spawnSync } from 'node:child_process';
import type Docker from 'dockerode';
import type { Logger } from 'pino';

export const GRID_NETWORK = 'grid-jobs';
export const GRID_BRIDGE = 'grid-jobs0';

const RULE = ['INPUT', '-i', GRID_BRIDGE, '-m', 'conntrack', '--ctstate', 'NEW', '-m', 'comment', '--comment', 'grid: jobs may not connect to this host', '-j', 'REJECT'];

/** Makes sure the job network exists (and, for Grid's own, that jobs cannot reach the host); throws what to do if not. */
export async function prepareJobNetwork(docker: Docker, network: string, log: Logger): Promise<void> {
  if (network === 'none' || network === 'bridge') {
    if (network === 'bridge') log.warn('jobs run on Docker\'s default bridge: they can connect to every port of this host, the control plane\'s and PostgreSQL\'s included');
    return;
  }
  if (network !== GRID_NETWORK) {
    await docker.getNetwork(network).inspect().catch((err) => {
      throw new Error(`job network "${network}" does not exist on this Docker engine (${(err as Error).message}); create it, or use --network ${GRID_NETWORK}`);
    });
    return;
  }
  await ensureNetwork(docker);
  blockHostAccess();
}

async function ensureNetwork(docker: Docker): Promise<void> {
  const exists = () => docker.getNetwork(GRID_NETWORK).inspect().then(() => true, () => false);
  if (await exists()) return;
  try {
    await docker.createNetwork({
      Name: GRID_NETWORK,
      Driver: 'bridge',
      CheckDuplicate: true,
      Labels: { 'dev.grid.network': 'jobs' },
      Options: { 'com.docker.network.bridge.name': GRID_BRIDGE, 'com.docker.network.bridge.enable_icc': 'false' },
    });
  } catch (err) {
    // Another agent on this engine made it first.
    if (!(await exists())) throw new Error(`cannot create the job network ${GRID_NETWORK}: ${(err as Error).message}`, { cause: err });
  }
}

/** The job network cannot be kept off this host (not root, no iptables). */
export class HostAccessError extends Error {}

function blockHostAccess(): void {
  const iptables = (action: string) => spawnSync('iptables', ['-w', '5', action, ...RULE], { encoding: 'utf8' });
  const check = iptables('-C');
  if (check.status === 0) return;
  const insert = spawnSync('iptables', ['-w', '5', '-I', ...RULE], { encoding: 'utf8' });
  if (insert.status !== 0) {
    const why = insert.error ? (insert.error as NodeJS.ErrnoException).code : insert.stderr.trim();
    throw new HostAccessError(
      `cannot keep jobs from connecting to this host (iptables: ${why}). Run the agent as root (its systemd unit does), ` +
        'or pass --network bridge to let jobs reach every port of this host, or --network none to give them no network',
    );
  }
}
