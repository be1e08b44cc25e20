// The version agents and control planes announce to each other, and which
// versions work together. Releases of one minor series speak the same
// protocol; a series also works with the one before and the one after it, so a
// rolling upgrade (control planes first or agents first, one minor version at
// a time) never has a pair that cannot talk. Pure.
export const GRID_VERSION = '0.2.0';

interface Series {
  major: number;
  minor: number;
}

function seriesOf(version: string): Series | undefined {
  const m = /^(\d+)\.(\d+)\.\d+(?:[-+].*)?$/.exec(version);
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : undefined;
}

/** Whether a peer announcing `theirs` works with this build (`ours`). */
export function compatibleVersion(theirs: string, ours = GRID_VERSION): boolean {
  const a = seriesOf(theirs);
  const b = seriesOf(ours);
  return a !== undefined && b !== undefined && a.major === b.major && Math.abs(a.minor - b.minor) <= 1;
}

/** The versions `ours` works with, for a message: "0.0.x, 0.1.x or 0.2.x". */
export function acceptedVersions(ours = GRID_VERSION): string {
  const b = seriesOf(ours);
  if (!b) return ours;
  const minors = [b.minor - 1, b.minor, b.minor + 1].filter((m) => m >= 0).map((m) => `${b.major}.${m}.x`);
  return `${minors.slice(0, -1).join(', ')} or ${minors.at(-1)}`;
}

/**
 * Whether a peer of `version` knows hand-backs (CANCEL_CAUSE_HANDED_BACK,
 * JobFinished.handed_back), new in 0.2: an older agent would take one for a
 * cancel, and an older control plane refuses the report.
 */
export function handsBack(version: string): boolean {
  const s = seriesOf(version);
  return s !== undefined && (s.major > 0 || s.minor >= 2);
}
