import test from 'ava';
import { withRequirements, PYTHON_CACHE } from '../../control-plane/python-requirements.js';

test('requirements run the script in a venv keyed by their content, kept in the python cache volume', (t) => {
  const a = withRequirements(Buffer.from('numpy==2.0\n'), '/grid/in/job.py', ['x', 'y']);
  const b = withRequirements(Buffer.from('numpy==2.0\n'), '/grid/in/other.py', []);
  const c = withRequirements(Buffer.from('numpy==2.1\n'), '/grid/in/job.py', []);
  t.deepEqual(a.argv.slice(0, 2), ['sh', '-c']);
  t.deepEqual(a.argv.slice(3), ['grid-python', '/grid/in/job.py', 'x', 'y']);
  const venv = (argv: string[]) => /venv=(\S+)/.exec(argv[2]!)![1];
  t.is(venv(a.argv), venv(b.argv), 'the same requirements share one environment');
  t.not(venv(a.argv), venv(c.argv));
  t.true(venv(a.argv)!.startsWith(`${PYTHON_CACHE.path}/venv-`));
  t.deepEqual(a.mounts, [PYTHON_CACHE]);
  t.deepEqual(a.files.map((f) => [f.path, Buffer.from(f.content).toString()]), [['/grid/in/.grid/requirements.txt', 'numpy==2.0\n']]);
  t.regex(a.argv[2]!, /flock 9/);
});
