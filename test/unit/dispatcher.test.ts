// The dispatcher's wake for jobs not yet due, with a fake owner of transitions
// and a fake registry (no database): the claim says when the next job is due,
// and the dispatcher claims again then, not in a loop before.
import test from 'ava';
import pino from 'pino';
import { createDispatcher } from '../../control-plane/dispatcher.js';
import type { Sql } from '../../control-plane/db/connect.js';
import type { JobTransitions } from '../../control-plane/job-transitions.js';
import type { NodeRegistry } from '../../control-plane/node-registry.js';

function fakeDispatcher(nextDueInMs: number) {
  const times: number[] = [];
  const fakeTransitions = {
    claim: async () => {
      times.push(performance.now());
      return { claimed: 0, exhausted: true, nextDueInMs };
    },
    noteWaiting: async () => 0,
  } as unknown as JobTransitions;
  const fakeSql = { listen: async () => ({ unlisten: async () => {} }) } as unknown as Sql;
  const fakeRegistry = { schedulable: () => [{}] } as unknown as NodeRegistry;
  const dispatcher = createDispatcher({ sql: fakeSql, registry: fakeRegistry, transitions: () => fakeTransitions, log: pino({ level: 'silent' }), sweepIntervalMs: 3_600_000 });
  return { dispatcher, claims: () => times.length, times };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a job due in 100 ms is claimed again then, not before', async (t) => {
  const { dispatcher, claims, times } = fakeDispatcher(100);
  try {
    dispatcher.kick('queued');
    for (const until = performance.now() + 5000; claims() < 2 && performance.now() < until; ) await sleep(10);
    t.true(claims() >= 2, 'woken when due, with no sweep (an hour) to do it');
    t.true(times[1]! - times[0]! >= 95, `${times[1]! - times[0]!} ms after the first claim`);
  } finally {
    await dispatcher.stop();
  }
});

test('a job due in 30 days does not wake the dispatcher in a loop (setTimeout overflows past 24.8 days)', async (t) => {
  const { dispatcher, claims } = fakeDispatcher(30 * 86_400_000);
  try {
    dispatcher.kick('queued');
    await sleep(300);
    t.is(claims(), 1);
  } finally {
    await dispatcher.stop();
  }
});
