// Docker reports a pull as a stream of JSON messages, several per layer step.
// People want one line: how many layers are on the node and how many bytes are
// down. PullTally folds the messages into that summary, and pacePullProgress
// keeps what goes on to the control plane to a few messages a second. Pure, so
// both are unit tested without an engine.

/** One message of Docker's pull stream (POST /images/create). */
export interface DockerPullMessage {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  /** Set when the pull failed; Docker still answers 200 and says so in the stream. */
  error?: string;
  errorDetail?: { message?: string };
}

export interface PullSummary {
  layersTotal: number;
  layersDone: number;
  downloadedBytes: number;
  totalBytes: number;
}

interface Layer {
  current: number;
  total: number;
  done: boolean;
}

// Layer messages carry the 12-hex short id.
const LAYER_ID = /^[0-9a-f]{12}$/;

export class PullTally {
  private readonly layers = new Map<string, Layer>();
  private failure: string | undefined;

  /** Folds one message in; returns true when it changed the summary. */
  add(message: DockerPullMessage): boolean {
    if (message.error !== undefined || message.errorDetail?.message !== undefined) {
      this.failure = message.errorDetail?.message || message.error || 'the pull failed';
      return false;
    }
    // "Pulling from repo" names the tag, which can look like a layer id (a short git sha).
    if (!message.id || !LAYER_ID.test(message.id) || message.status?.startsWith('Pulling from')) return false;
    let layer = this.layers.get(message.id);
    const isNew = !layer;
    if (!layer) this.layers.set(message.id, (layer = { current: 0, total: 0, done: false }));
    const before = { ...layer };
    switch (message.status) {
      case 'Downloading': {
        const { current, total } = message.progressDetail ?? {};
        if (typeof total === 'number' && total > 0) layer.total = total;
        if (typeof current === 'number' && current >= 0) layer.current = Math.min(current, layer.total || current);
        break;
      }
      // Past the download, the layer's bytes are all on the node; Extracting
      // counts the same bytes again, so it must not add to the download.
      case 'Download complete':
      case 'Verifying Checksum':
      case 'Extracting':
        layer.current = layer.total;
        break;
      case 'Pull complete':
      case 'Already exists':
        layer.current = layer.total;
        layer.done = true;
        break;
    }
    return isNew || before.current !== layer.current || before.total !== layer.total || before.done !== layer.done;
  }

  /** The pull's error message, once Docker reported one. */
  get error(): string | undefined {
    return this.failure;
  }

  get summary(): PullSummary {
    const s: PullSummary = { layersTotal: 0, layersDone: 0, downloadedBytes: 0, totalBytes: 0 };
    for (const layer of this.layers.values()) {
      s.layersTotal++;
      if (layer.done) s.layersDone++;
      s.downloadedBytes += layer.current;
      s.totalBytes += layer.total;
    }
    return s;
  }
}

/** Time for the pacer; a fake one in unit tests. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): NodeJS.Timeout;
  clearTimeout(timer: NodeJS.Timeout | undefined): void;
}

const systemClock: Clock = { now: () => Date.now(), setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (t) => clearTimeout(t) };

export interface PullPacer {
  /** The summary changed: sent now if the last send was long enough ago, else soon. */
  update(summary: PullSummary): void;
  /** The pull succeeded: sends the final summary (done) at once. */
  finish(summary: PullSummary): void;
  /** The pull ended without success: nothing more is sent. */
  stop(): void;
}

/**
 * Sends the first summary `settleMs` after the first update (Docker lists an
 * image's layers in one burst: they are counted together), then at most one per
 * `intervalMs` (the latest, trailing), and the final one at once.
 */
export function pacePullProgress(
  timing: { intervalMs: number; settleMs: number },
  send: (summary: PullSummary, done: boolean) => void,
  clock: Clock = systemClock,
): PullPacer {
  const now = () => clock.now();
  let lastSentAt: number | undefined;
  let pending: PullSummary | undefined;
  let timer: NodeJS.Timeout | undefined;
  let over = false;

  const flush = () => {
    timer = undefined;
    if (!pending || over) return;
    send(pending, false);
    pending = undefined;
    lastSentAt = now();
  };

  return {
    update(summary) {
      if (over) return;
      pending = summary;
      if (timer) return;
      const wait = lastSentAt === undefined ? timing.settleMs : lastSentAt + timing.intervalMs - now();
      if (wait <= 0) flush();
      else timer = clock.setTimeout(flush, wait);
    },
    finish(summary) {
      if (over) return;
      over = true;
      clock.clearTimeout(timer);
      send(summary, true);
    },
    stop() {
      over = true;
      clock.clearTimeout(timer);
    },
  };
}
