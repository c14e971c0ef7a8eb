/** The benchmark report as Markdown: machine header, then one row per measurement (and ratios with `--vs`). */
import type { BenchReport, Metric } from './harness.js';

export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return '–';
  const abs = Math.abs(value);
  if (abs !== 0 && abs < 1) return value.toFixed(3);
  if (abs < 10) return value.toFixed(2);
  if (abs < 1000) return value.toFixed(1);
  return Math.round(value).toLocaleString('en-US');
}

function targetCell(metric: Metric | undefined): string {
  if (metric?.target === undefined) return '';
  return `≤ ${metric.target} ${metric.summary.median <= metric.target ? 'met' : '**missed**'}`;
}

/** Rows in the order (the label's leading "4."), then by worker count, whatever the phase order. */
const orderOf = (label: string) => Number(/^(\d+)\./.exec(label)?.[1] ?? 99) * 1e6 + Number(/(\d+) (?:other |inactive |active )?workers/.exec(label)?.[1] ?? 0);

function row(cells: string[]): string {
  return `| ${cells.join(' | ')} |`;
}

export function formatMarkdown(report: BenchReport): string {
  const [base, other] = report.managers;
  if (!base) throw new Error('No manager measured');
  const m = report.machine;
  const lines = [
    `Benchmark ${report.date}: ${m.cores} cores (${m.cpu}), Node ${m.node}, ${m.platform}, load average at start ${m.loadavg.map((l) => l.toFixed(2)).join(' ')}`,
    '',
    ...report.managers.map((r) => `- ${r.label}: \`${r.template}\``),
    `- workers: \`${report.python}\``,
    '',
  ];
  const metrics = [...base.metrics].sort((a, b) => orderOf(a.label) - orderOf(b.label));
  if (!other) {
    lines.push(row(['Measurement', 'unit', 'n', 'min', 'median', 'p99', 'max', 'target (median)']), row(['---', '---', '--:', '--:', '--:', '--:', '--:', '---']));
    for (const metric of metrics) {
      const s = metric.summary;
      lines.push(row([metric.label, metric.unit, String(s.n), ...[s.min, s.median, s.p99, s.max].map(formatNumber), targetCell(metric)]));
    }
  } else {
    const a = base.label;
    const b = other.label;
    lines.push(
      row(['Measurement', 'unit', 'n', `${a} median`, `${a} p99`, `${b} median`, `${b} p99`, `${b}/${a} (median)`, `target, ${a}`, `target, ${b}`]),
      row(['---', '---', '--:', '--:', '--:', '--:', '--:', '--:', '---', '---']),
    );
    for (const metric of metrics) {
      const twin = other.metrics.find((o) => o.id === metric.id);
      // A ratio of differences that may be negative (activation overhead) means nothing.
      const ratio = twin && metric.summary.median > 0 && twin.summary.median > 0 ? `${formatNumber(twin.summary.median / metric.summary.median)}×` : '–';
      lines.push(
        row([
          metric.label,
          metric.unit,
          String(metric.summary.n),
          formatNumber(metric.summary.median),
          formatNumber(metric.summary.p99),
          formatNumber(twin?.summary.median ?? NaN),
          formatNumber(twin?.summary.p99 ?? NaN),
          ratio,
          targetCell(metric),
          targetCell(twin),
        ]),
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
