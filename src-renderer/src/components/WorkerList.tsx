/** The worker table with its search box and state filter. */
import { useDeferredValue, useMemo, useState } from 'react';
import { useHub } from '../hub-context.js';
import { filterItems, WORKER_STATES, workerState, type StateFilter, type WorkerItem } from '../worker-view.js';
import { WorkerRow } from './WorkerRow.js';

export function WorkerList({ items, onNew, onDelete }: { items: WorkerItem[]; onNew: () => void; onDelete: (uuid: string) => void }) {
  const loaded = useHub((s) => s.active !== null);
  const pending = useHub((s) => s.pending);
  const created = useHub((s) => s.created);
  const offline = useHub((s) => s.connection.status !== 'open');
  const logsSupported = useHub((s) => s.info !== null);
  const [query, setQuery] = useState('');
  const [stateFilter, setStateFilter] = useState<StateFilter>('all');
  // Typing stays responsive with a long list: the filter runs on the deferred text.
  const deferredQuery = useDeferredValue(query);
  const shown = useMemo(() => filterItems(items, deferredQuery, stateFilter), [items, deferredQuery, stateFilter]);
  const counts = useMemo(() => {
    const c: Partial<Record<StateFilter, number>> = {};
    for (const item of items) c[workerState(item)] = (c[workerState(item)] ?? 0) + 1;
    return c;
  }, [items]);

  return (
    <section className="workers" aria-labelledby="workers-title">
      <div className="toolbar">
        <h2 id="workers-title">
          Workers <span className="count">{shown.length === items.length ? items.length : `${shown.length} of ${items.length}`}</span>
        </h2>
        <input type="search" placeholder="Search by name or uuid" aria-label="Search workers" value={query} onChange={(e) => setQuery(e.target.value)} />
        <select aria-label="Show workers in state" value={stateFilter} onChange={(e) => setStateFilter(e.target.value as StateFilter)}>
          <option value="all">All states</option>
          {WORKER_STATES.map((s) => (
            <option key={s} value={s}>
              {s} ({counts[s] ?? 0})
            </option>
          ))}
        </select>
        <button type="button" className="primary" onClick={onNew} disabled={offline}>
          New worker
        </button>
      </div>
      {!loaded ? (
        <p className="empty">Loading workers…</p>
      ) : items.length === 0 ? (
        <p className="empty">No workers yet. Create one with “New worker”.</p>
      ) : shown.length === 0 ? (
        <p className="empty">No worker matches the search.</p>
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Worker</th>
                <th scope="col">State</th>
                <th scope="col">Address</th>
                <th scope="col">PID</th>
                <th scope="col">Uptime</th>
                <th scope="col">Environment</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {shown.map((item) => (
                <WorkerRow
                  key={item.uuid}
                  uuid={item.uuid}
                  config={item.config}
                  runtime={item.runtime}
                  listedActive={item.listedActive}
                  pending={pending[item.uuid]}
                  isNew={created === item.uuid}
                  offline={offline}
                  logsSupported={logsSupported}
                  onDelete={onDelete}
                />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
