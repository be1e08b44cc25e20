// The cli scenario: what a person waits for when they type `gridctl run` of a
// trivial job, against `docker run --rm` of the same image on the same host
// (issue 13's peer, target ≤ 1.15×). Each sample is the wall clock from spawning
// the command to its exit, as a shell would see it; the two commands take turns
// so that the machine's noise falls on both alike.
import { spawn } from 'node:child_process';
import { BIN } from '../test/helpers/grid.js';
import { measured, ms, type Section } from './report.js';
import { startStack } from './stack.js';
import { spread, summarize } from './stats.js';
import { atMost, verdict } from './targets.js';

export interface CliOptions {
  /** Timed runs of each command (after a warm-up of each). */
  samples: number;
}

export const FULL: CliOptions = { samples: 25 };
export const SMOKE: CliOptions = { samples: 2 };

const IMAGE = 'grid-test/busybox:1';
const RATIO_TARGET = atMost(1.15, '≤ 1.15× docker run --rm');

const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

/** Runs a command to its end; its wall-clock time in ms, or a throw if it did not exit 0 with the expected output. */
function timed(command: string, args: string[], expect: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const elapsed = performance.now() - started;
      if (code !== 0 || out !== expect) reject(new Error(`${command} ${args.join(' ')} exited ${code} with ${JSON.stringify(out)}: ${err.trim()}`));
      else resolve(elapsed);
    });
  });
}

export async function cliScenario(o: CliOptions): Promise<Section> {
  const stack = await startStack(['--slots', '2']);
  const gridctl = (): Promise<number> =>
    timed(process.execPath, [BIN.gridctl, '-s', stack.cp.address, 'run', '-q', '--image', IMAGE, '--', 'echo', 'hi'], 'hi\n');
  const docker = (): Promise<number> => timed('docker', ['run', '--rm', IMAGE, 'echo', 'hi'], 'hi\n');
  const node = (): Promise<number> => timed(process.execPath, ['-e', 'process.stdout.write("hi\\n")'], 'hi\n');
  const samples = { gridctl: [] as number[], docker: [] as number[], node: [] as number[], ratio: [] as number[] };
  try {
    log(`gridctl run vs docker run --rm (${IMAGE}), ${o.samples} each, taking turns`);
    await docker();
    await gridctl();
    for (let i = 0; i < o.samples; i++) {
      const d = await docker();
      const g = await gridctl();
      samples.docker.push(d);
      samples.gridctl.push(g);
      samples.ratio.push(g / d);
      samples.node.push(await node());
    }
  } finally {
    await stack.stop();
  }
  const figure = (xs: number[]) => {
    const s = summarize(xs);
    return `p50 ${ms(s.p50)} ms (min ${ms(Math.min(...xs))}, p90 ${ms(s.p90)}, ${s.samples} runs)`;
  };
  const ratio = spread(samples.ratio);
  const g = summarize(samples.gridctl).p50;
  const d = summarize(samples.docker).p50;
  return {
    scenario: 'cli',
    title: 'gridctl run against docker run --rm',
    command: 'npm run bench -- cli',
    about:
      `One control plane and one real agent as separate processes on this host; \`gridctl run -q --image ${IMAGE} -- echo hi\` ` +
      `and \`docker run --rm ${IMAGE} echo hi\` in turns, each timed from spawn to exit (what a shell waits for).`,
    figures: [
      measured('gridctl run, spawn → exit', figure(samples.gridctl)),
      measured('docker run --rm, spawn → exit', figure(samples.docker)),
      measured('node -e (Node start-up alone)', figure(samples.node)),
      measured(
        'gridctl run ÷ docker run --rm, per pair',
        `median ${ratio.median.toFixed(2)}× (min ${ratio.min.toFixed(2)}, max ${ratio.max.toFixed(2)}); of the medians ${(g / d).toFixed(2)}×`,
        RATIO_TARGET.text,
        verdict(ratio.median, RATIO_TARGET),
      ),
    ],
    notes: [],
    checks: ['every run exited 0 and printed exactly the job\'s output'],
  };
}
