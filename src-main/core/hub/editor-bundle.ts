/**
 * Where the FuncNodes editor (the `funcnodes_react_flow` package's prebuilt `static/` bundle) lives for a
 * Python: that interpreter is asked once (find_spec does not import the package, so it is quick), and the
 * answer is cached per interpreter until `forget()` (environments changed). "Not there" is not cached: a user
 * who runs the install command sees the editor on the next try, without restarting the manager.
 */
import { loadExeca } from '../python-env/execa-lazy.js';

export interface EditorBundle {
  /** The `static/` dir holding `index.html`. */
  dir: string;
  version: string | null;
}

/** `-P` keeps the cwd off `sys.path`, so a stray `funcnodes_react_flow/` in it cannot answer. */
const FIND_BUNDLE = [
  'import importlib.util as u,importlib.metadata as m,os,json',
  "s=u.find_spec('funcnodes_react_flow')",
  "d=os.path.join(list(s.submodule_search_locations)[0],'static') if s and s.submodule_search_locations else None",
  "ok=bool(d) and os.path.isfile(os.path.join(d,'index.html'))",
  'v=None',
  'try:\n  v=m.version("funcnodes-react-flow") if ok else None\nexcept Exception: pass',
  "print(json.dumps({'static':d if ok else None,'version':v}))",
].join('\n');

/** The command that installs the editor into `python`'s environment (shown when it is missing). */
export function installCommand(python: string): string {
  return `${python} -m pip install funcnodes-react-flow`;
}

export type AskPython = (python: string) => Promise<EditorBundle | null>;

/** Runs the interpreter; a Python that is missing, broken or too old counts as "no bundle there". */
export const askPython: AskPython = async (python) => {
  const execa = await loadExeca();
  const result = await execa(python, ['-P', '-c', FIND_BUNDLE], { reject: false, timeout: 30_000, stdin: 'ignore' });
  if (result.exitCode !== 0) return null;
  try {
    const parsed = JSON.parse(String(result.stdout).trim()) as { static?: unknown; version?: unknown };
    return typeof parsed.static === 'string' ? { dir: parsed.static, version: typeof parsed.version === 'string' ? parsed.version : null } : null;
  } catch {
    return null;
  }
};

export type BundleLookup = { ok: true; bundle: EditorBundle; python: string } | { ok: false; checked: string[] };

export class EditorBundles {
  private readonly cache = new Map<string, Promise<EditorBundle | null>>();

  constructor(private readonly ask: AskPython = askPython) {}

  /** The first of `pythons` (the worker's venv first, then the manager's) whose environment has the bundle. */
  async find(pythons: string[]): Promise<BundleLookup> {
    const checked = [...new Set(pythons)];
    for (const python of checked) {
      const bundle = await this.lookup(python);
      if (bundle) return { ok: true, bundle, python };
    }
    return { ok: false, checked };
  }

  /** Environments changed (a venv created, updated or rolled back): ask again next time. */
  forget(): void {
    this.cache.clear();
  }

  private lookup(python: string): Promise<EditorBundle | null> {
    let pending = this.cache.get(python);
    if (!pending) {
      pending = this.ask(python).catch(() => null);
      this.cache.set(python, pending);
      void pending.then((found) => {
        if (!found && this.cache.get(python) === pending) this.cache.delete(python);
      });
    }
    return pending;
  }
}
