// The attempts this node is stopping to hand back, kept on disk until their
// report is acknowledged. A stopped container looks like any other that was
// killed (exit 137): if the agent dies before the control plane has the
// hand-back, the next agent process reads this to report the attempt handed
// back, as it was, and not failed. Written rarely (a drain), so synchronously.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { attemptKeyOf, type AttemptRef } from '../common/attempt.js';

export interface HandBackLedger {
  /** Before the stop signal is sent. */
  note(attempt: AttemptRef): void;
  has(attempt: AttemptRef): boolean;
  /** Once the control plane acknowledged the report. */
  forget(attempt: AttemptRef): void;
}

export function openHandBackLedger(file: string): HandBackLedger {
  const keys = new Set<string>(read(file));
  const save = () => {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(`${file}.tmp`, JSON.stringify([...keys]));
    renameSync(`${file}.tmp`, file);
  };
  return {
    note(attempt) {
      if (keys.has(attemptKeyOf(attempt))) return;
      keys.add(attemptKeyOf(attempt));
      save();
    },
    has: (attempt) => keys.has(attemptKeyOf(attempt)),
    forget(attempt) {
      if (keys.delete(attemptKeyOf(attempt))) save();
    },
  };
}

function read(file: string): string[] {
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return Array.isArray(parsed) ? parsed.filter((k): k is string => typeof k === 'string') : [];
  } catch {
    // None yet (or torn by a crash mid-write, which the rename makes unlikely): nothing is being handed back.
    return [];
  }
}
