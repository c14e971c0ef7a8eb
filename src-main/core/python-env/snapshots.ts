/**
 * Env snapshots: the `pip freeze` of a worker's venv before and after each update, as requirement files
 * in `<data dir>/env_snapshots/<UTC time>.txt`, so a rollback can reinstall exactly those versions. A
 * `<UTC time>.started` file beside one records that a start succeeded with those versions.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../registry/registry.js';

export const SNAPSHOT_DIR = 'env_snapshots';
/** Older snapshots are pruned beyond this many. */
const KEEP = 20;

export interface Snapshot {
  id: string;
  /** Epoch ms. */
  created: number;
  file: string;
  /** The requirement lines (`name==version`). */
  packages: string[];
  /** A start succeeded with these versions. */
  started: boolean;
}

const ID = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z$/;

function idOf(time: number): string {
  return new Date(time).toISOString().replace(/[-:.]/g, '');
}

function timeOf(id: string): number | undefined {
  const m = ID.exec(id);
  return m ? Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6], +m[7]) : undefined;
}

function requirementLines(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

/** Newest first. */
export async function listSnapshots(dataDir: string): Promise<Snapshot[]> {
  const dir = path.join(dataDir, SNAPSHOT_DIR);
  const names = await readdir(dir).catch(() => [] as string[]);
  const snapshots: Snapshot[] = [];
  for (const name of names) {
    const id = name.endsWith('.txt') ? name.slice(0, -4) : '';
    const created = timeOf(id);
    if (created === undefined) continue;
    const file = path.join(dir, name);
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text !== undefined) snapshots.push({ id, created, file, packages: requirementLines(text), started: existsSync(startedFile(file)) });
  }
  return snapshots.sort((a, b) => b.created - a.created);
}

/** Records a freeze; the same versions as the newest snapshot reuse it instead of piling up copies. */
export async function saveSnapshot(dataDir: string, freeze: string, now = Date.now()): Promise<Snapshot> {
  const packages = requirementLines(freeze);
  const existing = await listSnapshots(dataDir);
  const newest = existing[0];
  if (newest && newest.packages.join('\n') === packages.join('\n')) return newest;
  const dir = path.join(dataDir, SNAPSHOT_DIR);
  await mkdir(dir, { recursive: true });
  // Never reuse an id: a second snapshot within one millisecond moves on by one.
  const created = Math.max(now, (newest?.created ?? 0) + 1);
  const id = idOf(created);
  const file = path.join(dir, `${id}.txt`);
  await writeFileAtomic(file, `${packages.join('\n')}\n`);
  for (const old of existing.slice(KEEP - 1)) {
    await rm(old.file, { force: true });
    await rm(startedFile(old.file), { force: true });
  }
  return { id, created, file, packages, started: false };
}

const startedFile = (file: string) => file.replace(/\.txt$/, '.started');

/** Records that a start succeeded with the versions of `snapshot`. */
export async function markStarted(snapshot: Snapshot): Promise<void> {
  await writeFileAtomic(startedFile(snapshot.file), `${new Date().toISOString()}\n`);
}
