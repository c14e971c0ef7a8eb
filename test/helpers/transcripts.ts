/**
 * Reading the transcripts recorded from the original Python Workermanager (../shared/spec/transcripts) and
 * comparing our hub's replies with them as *shapes*: the message type, the progress tuple, the error text
 * and the key sets, with worker uuids mapped between the recording and our run. See the README there for
 * the record formats.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import type { ManagerClient } from '../../src-main/core/hub/client.js';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
/** CI has ../shared beside the clone. */
export const TRANSCRIPTS_DIR = path.resolve(repoRoot, '../shared/spec/transcripts');

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

// ---------------------------------------------------------------- loading

/** `{conn, dir, raw, note}` records (lifecycle, misc, cli-*). */
export interface ConnRecord {
  ms: number;
  conn: string;
  dir: 'open' | 'send' | 'recv' | 'close' | 'error' | 'note';
  raw?: string;
  note?: string;
}

/** `{kind, url, dir, payload}` records of the web UI transcripts. */
export interface UiRecord {
  ms: number;
  kind: string;
  url?: string;
  dir?: 'sent' | 'recv';
  payload?: string;
  step?: string;
}

export interface Snapshot {
  stage: string;
  /** `worker_*` file name → {content}, data dir name (trailing `/`) → its entries. */
  files: Record<string, unknown>;
}

async function readJsonl<T>(name: string): Promise<T[]> {
  const text = await readFile(path.join(TRANSCRIPTS_DIR, name), 'utf8');
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as T);
}

export const loadConnTranscript = (name: string) => readJsonl<ConnRecord>(name);
export const loadUiTranscript = (name: string) => readJsonl<UiRecord>(name);

export async function loadSnapshots(name: string): Promise<Snapshot[]> {
  return JSON.parse(await readFile(path.join(TRANSCRIPTS_DIR, name), 'utf8')) as Snapshot[];
}

/** One request of a connection and what that connection received until its next request. */
export interface Step {
  send: string;
  /** The last `stage:`/`probe:`/`cleanup` note before it, for messages. */
  label: string;
  recorded: string[];
}

export type ReplayItem = { kind: 'step'; step: Step } | { kind: 'snapshot'; stage: string };

/** The requests of `conn` in order, interleaved with the files snapshots taken between them. */
export function replayItems(records: ConnRecord[], conn = 'main'): ReplayItem[] {
  const items: ReplayItem[] = [];
  let label = '';
  let current: Step | undefined;
  for (const r of records) {
    if (r.dir === 'note' && r.note !== undefined) {
      if (r.note.startsWith('snapshot ')) items.push({ kind: 'snapshot', stage: r.note.slice('snapshot '.length) });
      else if (/^(stage|probe|cleanup)\b/.test(r.note)) label = r.note;
    } else if (r.conn === conn && r.dir === 'send' && r.raw !== undefined) {
      current = { send: r.raw, label: label || r.raw, recorded: [] };
      items.push({ kind: 'step', step: current });
    } else if (r.conn === conn && r.dir === 'recv' && r.raw !== undefined) {
      if (current === undefined) throw new Error(`${conn} received a frame before its first request`);
      current.recorded.push(r.raw);
    }
  }
  return items;
}

export function framesOf(records: ConnRecord[], conn: string): string[] {
  return records.filter((r) => r.conn === conn && r.dir === 'recv' && r.raw !== undefined).map((r) => r.raw!);
}

/** `<binary 3 bytes 0x01 0x02 0x03>` as the recorder wrote a binary frame it sent. */
export function recordedBinary(raw: string): Buffer | undefined {
  const match = /^<binary \d+ bytes((?: 0x[0-9a-f]{2})*)>$/i.exec(raw);
  return match ? Buffer.from(match[1].trim().split(' ').filter(Boolean).map((h) => Number(h))) : undefined;
}

// ---------------------------------------------------------------- ids

/** Recorded worker uuid ⇄ ours. Uuids we chose ourselves (seeded files, `uuid` kwargs) map to themselves. */
export class IdMap {
  private readonly toOurs = new Map<string, string>();
  private readonly toRecorded = new Map<string, string>();

  link(recorded: string, ours: string): void {
    this.toOurs.set(recorded, ours);
    this.toRecorded.set(ours, recorded);
  }

  ours(recorded: string): string {
    return this.toOurs.get(recorded) ?? recorded;
  }

  /** A recorded frame's text with every mapped uuid replaced by ours (to replay a request). */
  oursText(text: string): string {
    let out = text;
    for (const [recorded, ours] of this.toOurs) out = out.replaceAll(recorded, ours);
    return out;
  }

  /** Our uuid as the recording knows it. */
  recorded(ours: string): string {
    return this.toRecorded.get(ours) ?? ours;
  }

  recordedText(text: string): string {
    let out = text;
    for (const [ours, recorded] of this.toRecorded) out = out.replaceAll(ours, recorded);
    return out;
  }
}

// ---------------------------------------------------------------- shapes

/** One frame, parsed, with its normalised shape (uuids as in the recording; no pids, ports, paths). */
export interface Frame {
  raw: string;
  json?: Json;
  shape: string;
}

const keySet = (o: Json) => `{${Object.keys(o).sort().join(',')}}`;

/**
 * Keys that newer workers write into their JSON and the recordings (FuncNodes 1.5.3) predate: `autostart`
 * (funcnodes-worker 1.6, which the real-FuncNodes tests and the stand-in follow; docs/real-funcnodes.md).
 */
const NEWER_WORKER_KEYS = new Set(['autostart']);

function workerKeys(entries: unknown[]): string {
  const recorded = (e: Json) => Object.fromEntries(Object.entries(e).filter(([key]) => !NEWER_WORKER_KEYS.has(key)));
  const sets = new Set(entries.map((e) => (isObject(e) ? keySet(recorded(e)) : typeof e)));
  return sets.size === 0 ? '' : ` worker${[...sets].sort().join('|')}`;
}

/**
 * The shape of one frame. `ids` maps our uuids back to the recorded ones (pass it for our frames only).
 * progress: the (message, progress, blocking, status) tuple; error: the message; worker_status: the sorted
 * uuids per list and the key sets of the entries; everything: the object's key set.
 */
export function toFrame(raw: string, ids?: IdMap): Frame {
  if (raw === 'pong') return { raw, shape: 'pong' };
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    return { raw, shape: `text ${JSON.stringify(raw.slice(0, 80))}` };
  }
  if (!isObject(data)) return { raw, shape: `json ${typeof data}` };
  const id = (value: unknown) => (ids ? ids.recorded(String(value)) : String(value));
  const keys = keySet(data);
  let shape: string;
  switch (data.type) {
    case undefined:
      shape = `identify class=${String(data.class)}`;
      break;
    case 'progress':
      shape = `progress ${JSON.stringify(data.message)} ${String(data.progress)} ${data.blocking === true ? 'blocking' : data.blocking === false ? 'nonblocking' : `blocking=${String(data.blocking)}`} ${String(data.status)}`;
      break;
    case 'error':
      shape = `error ${JSON.stringify(ids && typeof data.message === 'string' ? ids.recordedText(data.message) : data.message)}`;
      break;
    case 'worker_created':
    case 'worker_deleted':
      shape = `${data.type} ${id(data.uuid)}`;
      break;
    case 'worker_status': {
      const list = (value: unknown): unknown[] => (Array.isArray(value) ? (value as unknown[]) : []);
      const uuids = (value: unknown) =>
        list(value)
          .map((w) => (isObject(w) ? id(w.uuid) : '?'))
          .sort()
          .join(',');
      shape = `worker_status active=[${uuids(data.active)}] inactive=[${uuids(data.inactive)}]${workerKeys([...list(data.active), ...list(data.inactive)])}`;
      break;
    }
    case 'set_worker': {
      const w = isObject(data.data) ? data.data : {};
      shape = `set_worker ${id(w.uuid)} type=${String(w.type)}${workerKeys([w])}`;
      break;
    }
    default:
      shape = String(data.type);
  }
  return { raw, json: data, shape: `${shape} ${keys}` };
}

export const isStatus = (f: Frame) => f.json?.type === 'worker_status';
export const isReset = (f: Frame) => f.json?.type === 'progress' && f.json.message === '' && f.json.blocking === false;

/** Shape of a progress frame as the original sends it (for expectations built in the test). */
export const progressShape = (message: string, value: number, blocking = true) =>
  toFrame(JSON.stringify({ type: 'progress', message, status: 'info', progress: value, blocking })).shape;

export const RESET_SHAPE = progressShape('', 1, false);

// ---------------------------------------------------------------- expectations

/** What a worker writes to `.runstate` during a start, in order (spec §2.6), as relayed (`\n` → ` - `). */
export const START_RUNSTATES = ['starting - Loading packages', 'starting - Loading config', 'starting - Loading nodespace', 'running'];

/** Stands for the runstate progress frames between `Contacting worker.` and `set_worker` (spec §3.6 A.5). */
export interface RunstatesGroup {
  group: 'runstates';
}
export const RUNSTATES: RunstatesGroup = { group: 'runstates' };
/** Matches a frame whose shape matches `re`; `text` is shown in a diff when it does not. */
export interface Loose {
  re: RegExp;
  text: string;
}
export type Pattern = string | RunstatesGroup | Loose;

/** A progress frame as the activation poll relays runstates: 0.5, blocking, info, not a fixed step text. */
export function isRunstateFrame(f: Frame): boolean {
  const j = f.json;
  return j?.type === 'progress' && j.progress === 0.5 && j.blocking === true && j.status === 'info' && j.message !== 'Contacting worker.';
}

/** Runstates relayed once per distinct value, in start order, never a stale `removed` (deviation 5). */
function validRunstates(run: Frame[]): boolean {
  let last = -1;
  for (const f of run) {
    const index = START_RUNSTATES.indexOf(String(f.json?.message));
    if (index <= last) return false;
    last = index;
  }
  return true;
}

/** The expected shapes, with each group/loose pattern replaced by what it accepted (or by its description). */
function expectedView(actual: Frame[], expected: Pattern[]): string[] {
  const view: string[] = [];
  let i = 0;
  for (const p of expected) {
    if (typeof p === 'string') {
      view.push(p);
      i++;
    } else if ('group' in p) {
      let j = i;
      while (j < actual.length && isRunstateFrame(actual[j])) j++;
      const run = actual.slice(i, j);
      if (validRunstates(run)) view.push(...run.map((f) => f.shape));
      else view.push(`<runstate progress frames: an ordered subset of ${JSON.stringify(START_RUNSTATES)}, each at most once>`);
      i = j;
    } else {
      const f = actual[i];
      view.push(f !== undefined && p.re.test(f.shape) ? f.shape : p.text);
      i++;
    }
  }
  return view;
}

/** Our frames must match the expected patterns one to one, in order; a failure shows a readable diff. */
export function expectShapes(actual: Frame[], expected: Pattern[], what: string): void {
  expect(
    actual.map((f) => f.shape),
    what,
  ).toEqual(expectedView(actual, expected));
}

/** A reply is complete when our frames hold as many matches of the last pattern as the expectation has copies of it. */
function complete(actual: Frame[], expected: Pattern[]): boolean {
  const last = expected[expected.length - 1];
  if (last === undefined) return false;
  if (typeof last !== 'string' && 'group' in last) throw new Error('a reply cannot end with the runstates group');
  const accepts = (shape: string) => (typeof last === 'string' ? shape === last : last.re.test(shape));
  // Strings compare by value, loose patterns by identity.
  const needed = expected.filter((p) => p === last).length;
  return actual.filter((f) => accepts(f.shape)).length >= needed;
}

export interface ReadOptions {
  ids: IdMap;
  /** Frames that do not count towards completion (and are returned separately), e.g. status broadcasts. */
  aside?: (f: Frame) => boolean;
  /** After the reply is complete (or at once when nothing is expected): how long to wait for extra frames. */
  quietMs?: number;
  timeoutMs?: number;
  /** Called with each raw frame before it is shaped (to link a new worker's uuid in time). */
  onRaw?: (raw: string) => void;
  /** Called as each frame is read (for checks that must happen at that moment). */
  onFrame?: (f: Frame) => void;
}

/**
 * Reads our reply to one request: until the frames match the expected length (by its last pattern), then
 * for `quietMs` more so that extra frames show up in the comparison. Never throws on timeout: the
 * comparison reports what is missing.
 */
export async function readReply(client: ManagerClient, expected: Pattern[], opts: ReadOptions): Promise<{ frames: Frame[]; aside: Frame[] }> {
  const frames: Frame[] = [];
  const aside: Frame[] = [];
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  const read = async (ms: number): Promise<boolean> => {
    try {
      const raw = await client.nextText(Math.max(1, ms));
      opts.onRaw?.(raw);
      const f = toFrame(raw, opts.ids);
      opts.onFrame?.(f);
      (opts.aside?.(f) ? aside : frames).push(f);
      return true;
    } catch {
      return false;
    }
  };
  while (expected.length > 0 && !complete(frames, expected) && Date.now() < deadline) {
    if (!(await read(deadline - Date.now()))) break;
  }
  const quietMs = opts.quietMs ?? 150;
  for (;;) {
    if (!(await read(quietMs))) break;
  }
  return { frames, aside };
}

// ---------------------------------------------------------------- files

/** Recreates a recorded workers dir: worker JSONs and `.runstate`s verbatim, data dirs with their files. */
export async function seedWorkersDir(workersDir: string, snapshot: Snapshot): Promise<void> {
  await mkdir(workersDir, { recursive: true });
  for (const [name, value] of Object.entries(snapshot.files)) {
    const target = path.join(workersDir, name);
    if (name.endsWith('/')) {
      await mkdir(target, { recursive: true });
      for (const entry of Array.isArray(value) ? (value as unknown[]) : []) {
        // Entries are `"name (N B)"`, `"name"` or `{file, size, content}`.
        const file = isObject(entry) ? String(entry.file) : String(entry).replace(/ \(\d+ B\)$/, '');
        const content = isObject(entry) && entry.content !== undefined ? JSON.stringify(entry.content, null, 2) : '';
        await writeFile(path.join(target, file), content);
      }
    } else if (isObject(value)) {
      const content = value.content;
      await writeFile(target, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
    }
  }
}

/**
 * The persistent part of a workers dir: `worker_<id>.json` files and `worker_<id>/` data dirs, with our
 * uuids mapped to the recorded ones. `.p` and `.runstate` are transient (spec §2.5, §2.6) and the original
 * leaves a stale `removed` behind that we do not (spec §4.1 recommendation, §11.19), so they are left out.
 */
export async function persistentFiles(workersDir: string, ids?: IdMap): Promise<string[]> {
  const entries = await readdir(workersDir, { withFileTypes: true });
  return entries
    .filter((e) => e.name.startsWith('worker_') && (e.isDirectory() || e.name.endsWith('.json')))
    .map((e) => (ids ? ids.recordedText(e.name) : e.name) + (e.isDirectory() ? '/' : ''))
    .sort();
}

export function snapshotPersistentFiles(snapshot: Snapshot): string[] {
  return Object.keys(snapshot.files)
    .filter((name) => name.startsWith('worker_') && (name.endsWith('/') || name.endsWith('.json')))
    .sort();
}
