/**
 * Keeps the `worker.log` of every live worker followed, whoever started it. A log rotates as it is read
 * (worker-log.ts), so our children's logs rotate while they run; without this, an adopted worker (one a
 * previous manager started, still writing through its O_APPEND descriptor) would grow its log without
 * bound whenever nobody watches it.
 */
import type { ProcessLifecycle } from './lifecycle.js';
import type { StatusTracker } from './status.js';

/** Follows live workers' logs from now on; returns the function that stops it. */
export function followLiveWorkerLogs(status: StatusTracker, lifecycle: Pick<ProcessLifecycle, 'watchLog'>): () => void {
  const followed = new Map<string, () => void>();
  const update = (uuid: string) => {
    const alive = status.find(uuid)?.alive === true;
    if (alive && !followed.has(uuid)) {
      const watch = lifecycle.watchLog(uuid, 0, () => undefined);
      if (watch) followed.set(uuid, watch.unwatch);
    } else if (!alive) {
      followed.get(uuid)?.();
      followed.delete(uuid);
    }
  };
  const onChange = (uuids: ReadonlySet<string>) => uuids.forEach(update);
  status.on('alive', update);
  status.on('change', onChange);
  return () => {
    status.off('alive', update);
    status.off('change', onChange);
    for (const unwatch of followed.values()) unwatch();
    followed.clear();
  };
}
