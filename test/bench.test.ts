/**
 * The benchmark harness at tiny sizes against the real built manager (twice: A, and B with other flags,
 * so the alternating and ratio path runs), so `npm run bench` cannot rot. Timings are not asserted.
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { runBench, type BenchSizes } from '../bench/harness.js';
import { fillTemplate, splitCommand } from '../bench/processes.js';
import { formatMarkdown } from '../bench/report.js';
import { summarize } from '../bench/stats.js';
import { assertCliBuilt, CLI } from './helpers/cli.js';
import { waitFor } from './helpers/manager.js';
import { standinPython } from './helpers/standin.js';

const TINY: BenchSizes = {
  starts: 2,
  pings: 20,
  statusSizes: [0, 3],
  statusReps: 2,
  others: 4,
  propagationReps: 1,
  activationReps: 1,
  parallelStarts: 2,
  activeIdle: 1,
  clients: 3,
  clientReps: 1,
  idleMs: 300,
  settleMs: 100,
};

/** `<pid> <command line>` of every other process whose environment holds `entry` (Linux /proc). */
function processesWithEnv(entry: string): string[] {
  const read = (file: string) => {
    try {
      return readFileSync(file, 'latin1');
    } catch {
      return '';
    }
  };
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name) && Number(name) !== process.pid && read(`/proc/${name}/environ`).split('\0').includes(entry))
    .map((name) => `${name} ${read(`/proc/${name}/cmdline`).replaceAll('\0', ' ')}`);
}

describe('bench', () => {
  it('splits command templates like shell words and fills placeholders per word', () => {
    const words = splitCommand(`'/opt/my node/bin/node' cli.js --dir "{dir}" --port {port} a\\ b 'it'\\''s' ""`);
    expect(words).toEqual(['/opt/my node/bin/node', 'cli.js', '--dir', '{dir}', '--port', '{port}', 'a b', "it's", '']);
    expect(fillTemplate(words, { port: 9, dir: '/tmp/x y' })).toContain('/tmp/x y');
    expect(() => splitCommand(`node 'open`)).toThrow(/Unclosed/);
  });

  it('summarizes with nearest-rank percentiles', () => {
    expect(summarize([5, 1, 3, 2, 4])).toEqual({ n: 5, min: 1, median: 3, p99: 5, max: 5 });
    expect(summarize(Array.from({ length: 200 }, (_, i) => i + 1)).p99).toBe(198);
  });

  it('measures two managers at tiny sizes, with a real number for every measurement, and leaves nothing behind', async () => {
    assertCliBuilt();
    const ours = `'${process.execPath}' '${CLI}' startworkermanager --host 127.0.0.1 --port {port} --dir {dir}`;
    const before = readdirSync(tmpdir()).filter((n) => n.startsWith('fnwm-bench-'));
    // Every process the run starts (managers, the workers they start, the floor server, the boot baseline)
    // inherits this variable, so those still running afterwards can be found.
    const mark = randomUUID();
    process.env.FNWM_BENCH_TEST_RUN = mark;
    const report = await runBench({
      managers: [
        { label: 'A', template: ours },
        { label: 'B', template: `${ours} --keep-workers` },
      ],
      python: standinPython,
      sizes: TINY,
    }).finally(() => delete process.env.FNWM_BENCH_TEST_RUN);
    expect(report.machine.cores).toBeGreaterThan(0);
    expect(report.managers.map((m) => m.label)).toEqual(['A', 'B']);
    const expected = [
      'start_to_pong',
      'ping',
      'status_reply_0',
      'status_size_3',
      'status_reply_4',
      'new_json_0',
      'new_json_4',
      'sigkill_0',
      'sigkill_4',
      'set_active_4',
      'boot_4',
      'activation_overhead_4',
      'bound_4',
      'parallel_start',
      'clients',
      'idle_cpu_inactive',
      'rss_inactive',
      'idle_cpu_active',
      'rss_active',
    ];
    for (const manager of report.managers) {
      const ids = manager.metrics.map((m) => m.id);
      expect(ids).toEqual(expect.arrayContaining(expected));
      for (const metric of manager.metrics) {
        expect(metric.samples.length, metric.id).toBeGreaterThan(0);
        for (const value of metric.samples) expect(Number.isFinite(value), `${metric.id}: ${value}`).toBe(true);
        // Overheads are differences and may be negative; everything else is a duration, size or share.
        if (!metric.id.startsWith('activation_overhead')) expect(Math.min(...metric.samples), metric.id).toBeGreaterThanOrEqual(0);
      }
      const byId = new Map(manager.metrics.map((m) => [m.id, m]));
      expect(byId.get('start_to_pong')?.samples).toHaveLength(TINY.starts);
      expect(byId.get('ping')?.samples).toHaveLength(TINY.pings);
      expect(byId.get('status_size_3')?.summary.median).toBeGreaterThan(byId.get('status_size_0')?.summary.median ?? Infinity);
      expect(byId.get('rss_inactive')?.summary.median).toBeGreaterThan(10);
    }
    const table = formatMarkdown(report);
    expect(table).toMatch(/\| 1\. process start → first pong \| ms \| 2 \|/);
    expect(table).toContain('B/A (median)');
    expect(table.split('\n').filter((l) => l.startsWith('| ')).length).toBe(report.managers[0].metrics.length + 2);
    // Every config dir the run made is gone, and no process it started survives (B's workers outlive their
    // manager by design: the clean-up must end them). SIGKILLed processes may take a moment to go.
    expect(readdirSync(tmpdir()).filter((n) => n.startsWith('fnwm-bench-') && !before.includes(n))).toEqual([]);
    const survivors = () => processesWithEnv(`FNWM_BENCH_TEST_RUN=${mark}`);
    await waitFor(() => survivors().length === 0, 3000).catch(() => undefined);
    expect(survivors()).toEqual([]);
  }, 60_000);
});
