// What a benchmark scenario reports, and how BENCHMARKS.md and the console show
// it. A figure is either measured or FAILED with its reason, never both: a run
// that fails its correctness check has no figure to give.

export interface Figure {
  what: string;
  /** The figure in words ("551 / 608 / 645 jobs/s"), or `FAILED: reason`. */
  value: string;
  failed: boolean;
  /** The target beside it, '—' for none. */
  target: string;
  /** 'met', 'missed: …', or '' without a target or a figure. */
  verdict: string;
}

export interface Section {
  /** The name `npm run bench -- NAME` runs it by. */
  scenario: string;
  title: string;
  /** The command that reproduces every figure of the section. */
  command: string;
  about: string;
  figures: Figure[];
  /** Lines shown under the table: ratios, where the CPU went, anything odd seen. */
  notes: string[];
  /** The correctness checks that ran (after every run) before any figure was accepted. */
  checks: string[];
}

export function measured(what: string, value: string, target = '—', verdict = ''): Figure {
  return { what, value, failed: false, target, verdict };
}

export function failed(what: string, reason: string, target = '—'): Figure {
  return { what, value: `FAILED: ${oneLine(reason)}`, failed: true, target, verdict: '' };
}

/** A scenario that threw before it could report anything. */
export function failedSection(base: Pick<Section, 'scenario' | 'title' | 'command' | 'about'>, err: unknown): Section {
  return { ...base, figures: [failed(base.title, (err as Error).message ?? String(err))], notes: [], checks: [] };
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').replaceAll('|', '\\|').trim();
}

export function sectionMarkdown(s: Section): string {
  const rows = s.figures.map((f) => `| ${f.what} | ${f.value} | ${f.target} | ${f.verdict || '—'} |`);
  return [
    `## ${s.title}`,
    '',
    s.about,
    '',
    `Reproduce: \`${s.command}\``,
    '',
    '| what | figure | target | verdict |',
    '|---|---|---|---|',
    ...rows,
    ...(s.notes.length > 0 ? ['', ...s.notes.map((n) => `- ${n}`)] : []),
    ...(s.checks.length > 0 ? ['', `Checked after every run, before a figure counts: ${s.checks.join('; ')}.`] : []),
    '',
  ].join('\n');
}

export function benchmarksMarkdown(sections: Section[], machine: string, date: string, smoke: boolean): string {
  return [
    '# Benchmarks',
    '',
    `Written by \`npm run bench${smoke ? ' -- --smoke' : ''}\` on ${date}. Machine: ${machine}.`,
    smoke ? 'A SMOKE run: every scenario shrunk so that it only shows it still works; these figures measure nothing.' : '',
    'Percentiles are nearest-rank; repeated figures are min / median / max over the runs.',
    'A scenario or run that throws or fails its correctness check is written FAILED with the reason, not a figure.',
    '',
    '`npm run bench` runs every scenario and rewrites this file whole. `npm run bench -- SCENARIO` (`latency`, `throughput`)',
    'runs one and only prints its table (`--out FILE` writes it), so this file always holds one complete run; `--runs N` and',
    '`--jobs N` (and `--agents 16,4,64`) resize the throughput runs; `--smoke` shrinks everything and never writes here. `GRID_BENCH_CONTROL_PLANE=PATH`',
    '(a dist/control-plane/main.js) has the throughput scenario measure another build of the control plane.',
    '',
    ...sections.map(sectionMarkdown),
  ]
    .filter((line, i, all) => line !== '' || all[i - 1] !== '')
    .join('\n');
}

export const ms = (n: number): string => (n < 10 ? n.toFixed(1) : n.toFixed(0));
export const perSecond = (n: number): string => Math.round(n).toLocaleString('en-US');
