/**
 * execa, loaded on first use: a manager that never runs a process (an idle one over inactive workers) does
 * not pay its import time and ~5 MiB of RSS (measured with `npm run bench`, docs/performance.md).
 */
export async function loadExeca(): Promise<typeof import('execa').execa> {
  return (await import('execa')).execa;
}
