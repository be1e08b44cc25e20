// How `gridctl run` shows an image pull on stderr. On a terminal: one line
// rewritten in place, cut to the terminal's width so it never wraps. As plain
// lines (for logs): the first, one per finished layer, one every few seconds,
// and the last, never a flood.
import type { ImagePullProgress } from '../common/gen/grid/v1/job.js';
import { pullProgressLine } from './format.js';
import { dim } from './style.js';

export type PullDisplayMode = 'tty' | 'plain' | 'none';

export interface PullDisplayTarget {
  write(text: string): void;
  /** Terminal width, when known. */
  columns?: number;
}

export interface PullDisplay {
  /** Undefined when nothing is shown, so the watch does not even ask for progress. */
  readonly onPullProgress: ((p: ImagePullProgress) => void) | undefined;
  /** Ends a live line still showing, before anything else is written. */
  end(): void;
}

export const PLAIN_INTERVAL_MS = 5000;

export function createPullDisplay(mode: PullDisplayMode, target: PullDisplayTarget, now: () => number = Date.now): PullDisplay {
  let live = false;
  const end = () => {
    if (!live) return;
    target.write('\n');
    live = false;
  };
  if (mode === 'none') return { onPullProgress: undefined, end };

  if (mode === 'tty') {
    return {
      end,
      onPullProgress(p) {
        let text = `grid: ${pullProgressLine(p)}`;
        const width = (target.columns || 80) - 1;
        if (text.length > width) text = text.slice(0, Math.max(0, width - 1)) + '…';
        target.write(`\r\x1b[K${dim(text)}`);
        live = true;
        if (p.done) end();
      },
    };
  }

  let lastAt = -Infinity;
  let lastLayersDone = -1;
  return {
    end,
    onPullProgress(p) {
      const due = p.done || p.layersDone !== lastLayersDone || now() - lastAt >= PLAIN_INTERVAL_MS;
      if (!due) return;
      lastAt = now();
      lastLayersDone = p.layersDone;
      target.write(`grid: ${pullProgressLine(p)}\n`);
    },
  };
}
