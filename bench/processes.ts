/**
 * The processes a benchmark run owns: managers started from a command template, their cost read from
 * /proc (Linux), and the clean-up that ends every process that uses one of the run's temp dirs.
 */
import { spawn, execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { ManagerClient } from '../src-main/core/hub/client.js';
import { signalTree, terminateTree } from '../src-main/core/supervisor/process-tree.js';

/**
 * Splits a command template into words as a POSIX shell would for plain words, '…' and "…" quotes and
 * backslash escapes; no expansions. Placeholders are filled per word afterwards, so a path with spaces
 * stays one argument.
 */
export function splitCommand(template: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else word += c;
    } else if (c === '\\' && i + 1 < template.length && (quote === undefined || '"\\$`'.includes(template[i + 1]))) {
      word = (word ?? '') + template[++i];
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      word ??= '';
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else word = (word ?? '') + c;
  }
  if (quote) throw new Error(`Unclosed ${quote} in command template: ${template}`);
  if (word !== undefined) words.push(word);
  if (words.length === 0) throw new Error('Empty command template');
  return words;
}

export function fillTemplate(words: readonly string[], values: { port: number; dir: string }): string[] {
  return words.map((w) => w.replaceAll('{port}', String(values.port)).replaceAll('{dir}', values.dir));
}

/** A port that was free a moment ago (bound to 127.0.0.1:0, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface ManagerProcess {
  pid: number;
  url: string;
  /** Spawn → first `pong`, in ms. */
  startToPong: number;
  stop(): Promise<void>;
}

/** `ping` on a fresh connection (spec §7's probe); true when the first frame is `pong`. */
async function pongs(url: string): Promise<boolean> {
  let client: ManagerClient | undefined;
  try {
    client = await ManagerClient.connect(url, 1000);
    client.send('ping');
    return (await client.nextText(1000)) === 'pong';
  } catch {
    return false;
  } finally {
    client?.close();
  }
}

/**
 * Spawns a manager as the leader of its own process group (Ctrl-C in the terminal reaches only the
 * benchmark, which then ends it) and waits for its first `pong`, retrying the connection every 2 ms.
 */
export async function launchManager(words: readonly string[], dir: string, env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<ManagerProcess> {
  const port = await freePort();
  const [file, ...args] = fillTemplate(words, { port, dir }) as [string, ...string[]];
  const started = performance.now();
  const child = spawn(file, args, { env, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  let exit: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = `exit ${String(code ?? signal)}`;
      resolve();
    });
    child.once('error', (err) => {
      exit = err.message;
      resolve();
    });
  });
  const pid = child.pid ?? -1;
  const stop = async () => {
    if (exit === undefined) await terminateTree(pid, 10_000);
    await exited;
  };
  const url = `ws://127.0.0.1:${port}`;
  const deadline = started + timeoutMs;
  while (!(await pongs(url))) {
    if (exit !== undefined || performance.now() > deadline) {
      await stop();
      throw new Error(`Manager \`${[file, ...args].join(' ')}\` gave no pong (${exit ?? `timeout ${timeoutMs} ms`}). stderr:\n${stderr}`);
    }
    await sleep(2);
  }
  return { pid, url, startToPong: performance.now() - started, stop };
}

function readProc(file: string): string {
  try {
    return readFileSync(file, 'latin1');
  } catch {
    return '';
  }
}

/**
 * SIGKILLs every process (and its group) that names `dir` on its command line or as FUNCNODES_CONFIG_DIR:
 * the workers either manager started there, whatever became of the manager. Nothing else is touched.
 */
export function killProcessesUsing(dir: string): number {
  let killed = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const cmdline = readProc(`/proc/${name}/cmdline`).split('\0');
    const environ = readProc(`/proc/${name}/environ`).split('\0');
    if (!cmdline.some((arg) => arg.includes(dir)) && !environ.includes(`FUNCNODES_CONFIG_DIR=${dir}`)) continue;
    signalTree(Number(name), 'SIGKILL');
    killed++;
  }
  return killed;
}

let clockTicks: number | undefined;

/** CPU time (user + system) the process has used, in seconds (/proc/<pid>/stat fields 14 and 15). */
export function cpuSeconds(pid: number): number {
  clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  // The command name (field 2) may contain spaces; the fields after it start behind the last ')'.
  const stat = readProc(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields.length < 13) throw new Error(`No /proc/${pid}/stat: is the process gone, or is this not Linux?`);
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

/** Resident set size in bytes (VmRSS of /proc/<pid>/status). */
export function rssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readProc(`/proc/${pid}/status`));
  if (!match) throw new Error(`No VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}
