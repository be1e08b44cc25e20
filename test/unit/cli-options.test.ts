// A switch set from the environment takes the variable's value, not its mere presence.
import test from 'ava';
import { Command } from 'commander';
import { envOption, readSwitchesFromEnv } from '../../common/cli-options.js';

async function parsed(value: string | undefined): Promise<unknown> {
  const saved = process.env.GRID_TEST_SWITCH;
  if (value === undefined) delete process.env.GRID_TEST_SWITCH;
  else process.env.GRID_TEST_SWITCH = value;
  try {
    let seen: unknown = 'not run';
    const program = new Command('t').exitOverride().configureOutput({ writeErr: () => {} });
    program.addOption(envOption('--switch', 'a switch', 'GRID_TEST_SWITCH')).action((flags) => (seen = flags.switch));
    readSwitchesFromEnv(program);
    await program.parseAsync([], { from: 'user' }).catch((err: Error) => (seen = err.message));
    return seen;
  } finally {
    if (saved === undefined) delete process.env.GRID_TEST_SWITCH;
    else process.env.GRID_TEST_SWITCH = saved;
  }
}

test('1, true, yes and on turn a switch on; 0, false, no, off and empty leave it off; anything else is an error', async (t) => {
  for (const on of ['1', 'true', 'YES', 'on']) t.is(await parsed(on), true, on);
  for (const off of ['0', 'false', 'no', 'off', '']) t.is(await parsed(off), undefined, off);
  t.is(await parsed(undefined), undefined);
  t.regex(String(await parsed('maybe')), /GRID_TEST_SWITCH="maybe" is not a yes or no/);
});
