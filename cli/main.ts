#!/usr/bin/env node
// gridctl: submit a script or command, watch it, read its logs, cancel it, and
// list jobs and nodes.
import { Command, CommanderError, Option } from 'commander';
import { parseConstraint, type LabelConstraint } from '../common/label-constraints.js';
import { envOption, flagParser, parseBytesFlag, parseDurationFlag, parseIntFlag, parseWholeNumberFlag, parseNumberFlag, readSwitchesFromEnv } from '../common/cli-options.js';
import { GRID_VERSION } from '../common/version.js';
import { connect, connectionOf, describeError, type GridClients } from './client.js';
import { versionCommand } from './commands/version.js';
import { completionScript } from './completion.js';
import { resolve } from 'node:path';
import { chosenContext, configPath, readConfig, writeConfig, type Context } from './config-file.js';
import { tokenCreateCommand, tokenListCommand, tokenRevokeCommand } from './commands/token.js';
import { SCOPE_NAMES } from '../common/token-scope.js';
import { certsInit, certsIssueAgent, certsIssueServer, type CertsFlags } from './commands/certs.js';
import { cancelCommand } from './commands/cancel.js';
import { drainCommand, undrainCommand } from './commands/node.js';
import { listCommand, logsCommand, nodesCommand, runtimesCommand, statusCommand, type Output } from './commands/inspect.js';
import { readWorkload, runCommand } from './commands/run.js';
import { cronCreateCommand, cronDeleteCommand, cronListCommand, cronPauseCommand, OVERLAP_NAMES } from './commands/cron.js';
import { outputsCommand } from './commands/outputs.js';
import { readInputs, readStdin } from './inputs.js';
import { EXIT_CODE_HELP, EXIT_GRID_ERROR } from './exit-codes.js';
import { parseStartTime, splitRunOperands } from './run-spec.js';

const program = new Command('gridctl')
  .description('Run scripts and containers on a Grid.')
  .version(GRID_VERSION)
  .addOption(envOption('-s, --server <host:port>', 'control plane address', 'GRID_SERVER', '127.0.0.1:7070'))
  .addOption(envOption('--context <name>', 'the config file\'s context to use (default: its current-context)', 'GRID_CONTEXT'))
  .addOption(envOption('--tls-ca <file>', 'CA (PEM) of the control plane\'s certificate: dial with TLS', 'GRID_TLS_CA'))
  .addOption(new Option('--log-level <level>', 'debug shows the stack of an error; gridctl logs nothing else').choices(['trace', 'debug', 'info', 'warn', 'error']).default('info').env('GRID_LOG_LEVEL'))
  .addOption(envOption('--token-file <file>', 'file holding the API token (or set GRID_TOKEN; never a flag, which `ps` shows)', 'GRID_TOKEN_FILE'))
  .addHelpText('after', EXIT_CODE_HELP)
  // Synchronous: commander calls process.exit(1) itself the moment this returns.
  // Writes to a terminal, a file or a pipe are synchronous on Linux, so nothing is lost.
  .exitOverride((err: CommanderError) => process.exit(err.exitCode === 0 ? 0 : EXIT_GRID_ERROR))
  .showHelpAfterError('(run with --help for usage)');

const outputOption = () => new Option('-o, --output <format>', 'table, json or yaml').choices(['table', 'json', 'yaml']).default('table');
/** Lists also have wide: full ids and cells, not fitted to 80 columns. */
const listOutputOption = () => new Option('-o, --output <format>', 'table (fits 80 columns), wide, json or yaml').choices(['table', 'wide', 'json', 'yaml']).default('table');
const collect = (value: string, previous: string[]) => [...previous, value];
const collectConstraint = (flag: string) => {
  const parse = flagParser((text: string) => parseConstraint(text, flag));
  return (value: string, previous: LabelConstraint[]) => [...previous, parse(value)];
};
const watchOption = () => new Option('-w, --watch', 'show it again every 2s until Ctrl-C (piped: only when it changed)');

/** Runs a command's body against the control plane and exits with its code. */
function action<A extends unknown[]>(body: (clients: GridClients, ...args: A) => Promise<number>) {
  return async (...args: A) => {
    let code: number;
    let clients: GridClients;
    try {
      const path = configPath();
      const context = chosenContext(readConfig(path), program.opts().context, path) ?? {};
      // The context's server unless a flag or GRID_SERVER gave one.
      const server = program.getOptionValueSource('server') === 'default' && context.server ? context.server : program.opts().server;
      clients = connect(server, connectionOf(program.opts(), process.env, context));
    } catch (err) {
      process.stderr.write(`gridctl: ${(err as Error).message}\n`);
      return exit(EXIT_GRID_ERROR);
    }
    try {
      code = await body(clients, ...args);
    } catch (err) {
      process.stderr.write(`gridctl: ${describeError(err, clients.server)}\n`);
      if (['trace', 'debug'].includes(program.opts().logLevel) && err instanceof Error) process.stderr.write(`${err.stack}\n`);
      code = EXIT_GRID_ERROR;
    } finally {
      clients.close();
    }
    await exit(code);
  };
}

/** The options of a job's spec, shared by `run` and `cron create`. */
function withJobOptions(command: Command): Command {
  return command
    .option('--image <image>', 'container image (default: the runtime\'s, or the server\'s default)')
    .option('--runtime <name>', 'runtime preset for a script (python, node, bash, sh); default from the extension')
    .option('-e, --env <NAME=VALUE>', 'environment variable, repeatable; NAME alone passes this shell\'s value', collect, [])
    .option('--cpu <cores>', 'CPU limit, e.g. 0.5', parseNumberFlag)
    .option('--memory <size>', 'memory limit, e.g. 256m or 2g', parseBytesFlag)
    .option('--timeout <duration>', 'run timeout, e.g. 30s or 2h', parseDurationFlag)
    .option('--queue-timeout <duration>', 'give up if not started within this, e.g. 10m', parseDurationFlag)
    .option('--stop-signal <signal>', 'signal asking the job to stop on cancel or timeout (default SIGTERM)')
    .option('--stop-grace <duration>', 'time between the stop signal and SIGKILL (default 10s)', parseDurationFlag)
    .option('-w, --workdir <dir>', 'working directory in the container')
    .option('--max-attempts <n>', 'attempts allowed if a node is lost', parseIntFlag)
    .option('--retries <n>', 'run again on failure (non-zero exit, timeout, out of memory), at most N times, with exponential back-off', parseIntFlag)
    .option('--retry-backoff <duration>', 'wait before the first retry, doubling for each next (default 1s; each drawn with jitter)', parseDurationFlag)
    .option('--priority <n>', 'higher runs first, -100 to 100 (default 0); each level is worth 30 s of waiting', parseWholeNumberFlag)
    .option('--constraint <KEY=VALUE>', 'run only on a node with this label (KEY!=VALUE: without it), repeatable', collectConstraint('--constraint'), [])
    .option('--prefer <KEY=VALUE>', 'prefer nodes with this label (KEY!=VALUE: without it) when several have room, repeatable', collectConstraint('--prefer'), [])
    .option('-i, --input <path>', 'file or directory to place under /grid/in, repeatable', collect, [])
    .option('-r, --requirements <file>', 'pip requirements for a python script (default: requirements.txt beside it)');
}

const run = program
  .command('run')
  .summary('run a script or a command and follow its output')
  .description('Run a script (runtime from its extension) or, after --, a command; follow its output and exit with its exit code.')
  .usage('[options] SCRIPT [-- ARGS...]\n       gridctl run [options] -- COMMAND [ARGS...]')
  .argument('[operands...]');
withJobOptions(run)
  .option('--secret-env <NAME>', 'pass this shell\'s NAME to the job as a secret: stored encrypted, masked in output, shown as <redacted>; repeatable', collect, [])
  .option('--in <duration>', 'start no earlier than this from now, e.g. 10m', parseDurationFlag)
  .option('--at <time>', 'start no earlier than this time, e.g. 2026-12-04T09:00:00Z or 09:00', flagParser((text) => parseStartTime(text)))
  .option('--stdin', 'send this shell\'s standard input to the job (read to its end first, up to 16 MiB)')
  .option('-d, --detach', 'print the job id and return at once')
  .option('-q, --quiet', 'no grid: status lines on stderr, only the job\'s own output')
  .addOption(new Option('--progress <mode>', 'image pull progress on stderr: auto (live on a terminal, else plain lines), plain (a line per update) or none').choices(['auto', 'plain', 'none']).default('auto'))
  .action(
    action(async (clients, operands: string[], flags) => {
      const dashDash = process.argv.indexOf('--');
      const { script, rest } = splitRunOperands(operands, dashDash >= 0 ? process.argv.slice(dashDash + 1) : undefined);
      const workload = await readWorkload(script, rest, flags);
      return runCommand(clients, workload, flags, await readInputs(flags.input), flags.stdin ? await readStdin() : undefined);
    }),
  );

program
  .command('status')
  .description('show a job: state, reason, exit code, times')
  .argument('<job>')
  .addOption(outputOption())
  .addOption(watchOption())
  .action(action((clients, job: string, flags: { output: Output; watch?: boolean }) => statusCommand(clients, job, flags.output, Boolean(flags.watch))));

program
  .command('logs')
  .description('print a job\'s output (stdout to stdout, stderr to stderr)')
  .argument('<job>')
  .option('-f, --follow', 'keep following until the job ends; exit with its code')
  .option('--stdout', 'only standard output')
  .option('--stderr', 'only standard error')
  .option('-t, --timestamps', 'prefix each line with the time it was read on the node')
  .option('--tail <n>', 'only the last N lines of each stream (then follow, with -f)', parseIntFlag)
  .action(action((clients, job: string, flags) => logsCommand(clients, job, flags)));

program
  .command('outputs')
  .description('fetch the files a job wrote under /grid/out')
  .argument('<job>')
  .option('--dest <dir>', 'directory to write them into', '.')
  .action(action((clients, job: string, flags: { dest: string }) => outputsCommand(clients, job, flags)));

program
  .command('runtimes')
  .description('list the runtime presets scripts run with (name → image and interpreter)')
  .addOption(outputOption())
  .action(action((clients, flags: { output: Output }) => runtimesCommand(clients, flags.output)));

program
  .command('list')
  .alias('ls')
  .description('list jobs, newest first')
  .option('--state <states>', 'only these states, comma-separated (e.g. running,queued)')
  .option('-n, --limit <n>', 'at most this many', parseIntFlag, 50)
  .option('--node <node-id>', 'only jobs on this node')
  .option('--since <duration>', 'only jobs submitted within this long, e.g. 1h', parseDurationFlag)
  .option('-q, --quiet', 'only the job ids, one per line (for scripts: xargs gridctl cancel)')
  .option('--no-headers', 'the table without its header line')
  .addOption(listOutputOption())
  .addOption(watchOption())
  .action(action((clients, flags) => listCommand(clients, flags, Boolean(flags.watch))));

program
  .command('nodes')
  .description('list nodes and their state')
  .option('-q, --quiet', 'only the node ids, one per line')
  .option('--no-headers', 'the table without its header line')
  .addOption(listOutputOption())
  .addOption(watchOption())
  .action(action((clients, flags: { output: Output; quiet?: boolean; headers: boolean; watch?: boolean }) => nodesCommand(clients, flags, Boolean(flags.watch))));

const node = program.command('node').description('take a node out of scheduling and put it back (needs an admin token)');
node
  .command('drain')
  .description('give the node no new job; what it runs goes on (up to --deadline)')
  .argument('<node-id>')
  .option('--deadline <duration>', 'then stop what still runs and hand it back to the queue, its attempt not spent, e.g. 10m or 0s', parseDurationFlag)
  .action(action((clients, nodeId: string, flags: { deadline?: number }) => drainCommand(clients, nodeId, flags.deadline)));
node
  .command('undrain')
  .description('open a drained node to new jobs again')
  .argument('<node-id>')
  .action(action((clients, nodeId: string) => undrainCommand(clients, nodeId)));

program
  .command('cancel')
  .description('cancel jobs (stop signal, grace, then SIGKILL); ids or unique short-id prefixes')
  .argument('<job...>')
  .option('--grace <duration>', 'time between SIGTERM and SIGKILL, e.g. 0s or 30s', parseDurationFlag)
  .option('--wait', 'wait until the job has ended; exit with its code')
  .action(action((clients, jobs: string[], flags) => cancelCommand(clients, jobs, flags)));

program
  .command('version')
  .description('the versions of gridctl and of the control plane it talks to')
  .option('--client', 'only gridctl\'s own (no control plane needed)')
  .addOption(outputOption())
  .action(action((clients, flags: { client?: boolean; output: Output }) => versionCommand(clients, flags)));

const token = program.command('token').description('make, list and revoke API tokens (needs an admin token)');
token
  .command('create')
  .description('make a token; it is printed once, on stdout')
  .requiredOption('--name <name>', 'a label for people, e.g. "ci" or "alice"')
  .addOption(new Option('--scope <scope>', 'read (look), submit (read + submit and cancel) or admin (all)').choices(SCOPE_NAMES).makeOptionMandatory())
  .option('--expires-in <duration>', 'valid for this long, e.g. 30d (default: until revoked)', parseDurationFlag)
  .action(action((clients, flags) => tokenCreateCommand(clients, flags)));
token
  .command('list')
  .description('list tokens (never their secrets)')
  .addOption(outputOption())
  .action(action((clients, flags: { output: Output }) => tokenListCommand(clients, flags.output)));
token
  .command('revoke')
  .description('revoke tokens by id: calls with them fail within seconds')
  .argument('<token-id...>')
  .action(action((clients, ids: string[]) => tokenRevokeCommand(clients, ids)));

const cron = program.command('cron').description('periodic jobs: a job submitted at every tick of a cron schedule (UTC)');
withJobOptions(
  cron
    .command('create')
    .description('store a periodic job; SCRIPT or -- COMMAND as for run')
    .usage('NAME --schedule EXPR [options] SCRIPT [-- ARGS...] | -- COMMAND [ARGS...]')
    .argument('<name>')
    .argument('[operands...]')
    .requiredOption('--schedule <expr>', 'cron expression in UTC: "*/5 * * * *", six fields with seconds first, or @hourly, @daily...')
    .addOption(new Option('--overlap <policy>', 'while the last tick\'s job still runs: skip this tick, allow both, or cancel-previous').choices(OVERLAP_NAMES).default('skip')),
).action(
  action(async (clients, name: string, operands: string[], flags) => {
    const dashDash = process.argv.indexOf('--');
    const { script, rest } = splitRunOperands(operands, dashDash >= 0 ? process.argv.slice(dashDash + 1) : undefined);
    return cronCreateCommand(clients, name, await readWorkload(script, rest, flags), flags, await readInputs(flags.input));
  }),
);
cron
  .command('list')
  .description('list periodic jobs: schedule, overlap policy, next tick, last job')
  .addOption(outputOption())
  .action(action((clients, flags: { output: Output }) => cronListCommand(clients, flags.output)));
cron
  .command('pause')
  .description('stop firing a periodic job until resumed')
  .argument('<name>')
  .action(action((clients, name: string) => cronPauseCommand(clients, name, true)));
cron
  .command('resume')
  .description('fire a paused periodic job again, from its next tick (missed ticks are not fired)')
  .argument('<name>')
  .action(action((clients, name: string) => cronPauseCommand(clients, name, false)));
cron
  .command('delete')
  .description('remove a periodic job (the jobs it submitted are left as they are)')
  .argument('<name>')
  .action(action((clients, name: string) => cronDeleteCommand(clients, name)));

const config = program.command('config').description(`named contexts (address, TLS CA, token file) in ${configPath()} or $GRID_CONFIG`);
config
  .command('get-contexts')
  .description('list the contexts; * marks the current one')
  .action(offline(() => {
    const file = readConfig(configPath());
    for (const [name, c] of Object.entries(file.contexts)) {
      process.stdout.write(`${name === file['current-context'] ? '*' : ' '} ${name}  ${c.server ?? '-'}${c['tls-ca'] ? '  tls' : ''}${c['token-file'] || c.token ? '  token' : ''}\n`);
    }
    return 0;
  }));
config
  .command('use-context')
  .description('make a context the current one')
  .argument('<name>')
  .action(offline((name: string) => {
    const path = configPath();
    const file = readConfig(path);
    chosenContext(file, name, path);
    writeConfig(path, { ...file, 'current-context': name });
    process.stdout.write(`now using context "${name}"\n`);
    return 0;
  }));
config
  .command('set-context')
  .description('make or change a context from the -s/--server, --tls-ca and --token-file given (it becomes the current one if there is none)')
  .argument('<name>')
  .action(offline((name: string) => {
    // Those are gridctl's global flags, parsed by the root: only the ones on this command line count.
    const given = (flag: 'server' | 'tlsCa' | 'tokenFile') => (program.getOptionValueSource(flag) === 'cli' ? (program.opts()[flag] as string) : undefined);
    const flags = { server: given('server'), tlsCa: given('tlsCa'), tokenFile: given('tokenFile') };
    const path = configPath();
    const file = readConfig(path);
    const context: Context = { ...file.contexts[name] };
    if (flags.server) context.server = flags.server;
    if (flags.tlsCa) context['tls-ca'] = resolve(flags.tlsCa);
    if (flags.tokenFile) context['token-file'] = resolve(flags.tokenFile);
    writeConfig(path, { 'current-context': file['current-context'] ?? name, contexts: { ...file.contexts, [name]: context } });
    process.stdout.write(`context "${name}" saved in ${path}\n`);
    return 0;
  }));

/** Runs a command that needs no control plane. */
function offline<A extends unknown[]>(body: (...args: A) => number) {
  return async (...args: A) => {
    let code: number;
    try {
      code = body(...args);
    } catch (err) {
      process.stderr.write(`gridctl: ${(err as Error).message}\n`);
      code = EXIT_GRID_ERROR;
    }
    await exit(code);
  };
}

const certs = program.command('certs').description('make a CA and the TLS certificates of a control plane and its agents (with openssl)');
const certsDir = () => new Option('--dir <dir>', 'where the CA and certificates are kept').default('grid-certs');
const days = () => new Option('--days <n>', 'validity of the certificate, in days').argParser(parseIntFlag).default(365);
certs
  .command('init')
  .description('make the CA (ca.crt, ca.key) that signs every certificate of this Grid')
  .addOption(certsDir())
  .addOption(days())
  .action(offline((flags: CertsFlags) => certsInit(flags)));
certs
  .command('issue-server')
  .description('issue the control plane\'s certificate (server.crt, server.key), valid for --name and loopback')
  .addOption(certsDir())
  .addOption(days())
  .option('--name <host>', 'DNS name or IP address agents and clients dial, repeatable', collect, [])
  .action(offline((flags: CertsFlags & { name: string[] }) => certsIssueServer(flags)));
certs
  .command('issue-agent')
  .description('issue an agent\'s certificate (NODE_ID.crt, NODE_ID.key): it is the node\'s identity')
  .argument('<node-id>')
  .addOption(certsDir())
  .addOption(days())
  .action(offline((nodeId: string, flags: CertsFlags) => certsIssueAgent(nodeId, flags)));

program
  .command('completion')
  .description('print a shell completion script: source <(gridctl completion bash), or zsh, or fish')
  .argument('<shell>', 'bash, zsh or fish')
  .action(offline((shell: string) => {
    process.stdout.write(completionScript(program, shell));
    return 0;
  }));

async function exit(code: number): Promise<never> {
  await Promise.all([process.stdout, process.stderr].map((s) => new Promise((resolve) => s.write('', resolve))));
  process.exit(code);
}

readSwitchesFromEnv(program);
// Not a top-level await: the bundle is CommonJS (see scripts/bundle.mjs); action() handles every error.
void program.parseAsync();
