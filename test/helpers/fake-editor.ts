/**
 * A fake `funcnodes-react-flow` (test/fixtures/fake-react-flow: an index.html shaped like the real one, and
 * a small "bundle" that walks the real one's manager → set_worker → worker socket path), built as a wheel
 * and installed offline into a real venv together with the stand-in `funcnodes`.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { pythonInVenv } from '../../src-main/core/python-env/python.js';
import { buildWheels, offlinePip } from './python-env.js';

const FIXTURE = path.resolve(import.meta.dirname, '..', 'fixtures', 'fake-react-flow');
const VERSION = '9.9.9';

/** Writes the fake editor's wheel (and the stand-in's) into `wheelhouse`. */
export async function buildEditorWheels(wheelhouse: string): Promise<void> {
  await buildWheels(wheelhouse, ['1.0.0']);
  const files: Record<string, string> = { 'funcnodes_react_flow/__init__.py': `__version__ = "${VERSION}"\n` };
  for (const name of await readdir(FIXTURE)) files[`funcnodes_react_flow/static/${name}`] = await readFile(path.join(FIXTURE, name), 'utf8');
  await execa('python3', [path.join(import.meta.dirname, 'make_wheels.py'), wheelhouse], {
    input: JSON.stringify([{ name: 'funcnodes-react-flow', version: VERSION, files }]),
  });
}

/** A real venv at `venvDir` with the stand-in `funcnodes` and, if `withEditor`, the fake editor; its python. */
export async function makeEditorVenv(venvDir: string, wheelhouse: string, withEditor = true): Promise<string> {
  await execa('python3', ['-m', 'venv', venvDir]);
  const python = pythonInVenv(venvDir);
  const packages = ['funcnodes', ...(withEditor ? ['funcnodes-react-flow'] : [])];
  await execa(python, ['-m', 'pip', 'install', '-q', ...packages], { env: offlinePip(wheelhouse) });
  return python;
}
