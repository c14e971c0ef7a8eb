/**
 * One worker. Memoised on its own props (config and runtime objects keep their identity while unchanged),
 * so progress frames and changes to other workers do not re-render it.
 */
import { memo, useEffect, useRef, useState } from 'react';
import {
  AUTOSTART_POLICIES,
  type AutostartPolicy,
  exitText,
  isRunningState,
  RESTART_POLICIES,
  type RestartPolicy,
  type WorkerConfig,
  type WorkerIdRequestType,
  type WorkerRuntime,
} from '../../../src-shared/protocol.js';
import { useNow } from '../clock.js';
import { useActions, useHub } from '../hub-context.js';
import { formatDuration } from '../../../src-shared/duration.js';
import { editorUrl } from '../../../src-shared/editor-path.js';
import { displayName, envLabel, hostPort, workerAddress, workerPid, workerState } from '../worker-view.js';

export interface RowProps {
  uuid: string;
  config: WorkerConfig | undefined;
  runtime: WorkerRuntime | undefined;
  listedActive: boolean;
  pending: WorkerIdRequestType | undefined;
  isNew: boolean;
  /** Not connected: every action is off. */
  offline: boolean;
  logsSupported: boolean;
  onDelete: (uuid: string) => void;
}

const PENDING_TEXT: Record<WorkerIdRequestType, string> = {
  set_active: 'starting…',
  stop_worker: 'stopping…',
  restart_worker: 'restarting…',
  delete_worker: 'deleting…',
};

function Uptime({ since }: { since: number }) {
  const now = useNow();
  return <time dateTime={new Date(since).toISOString()}>{formatDuration(now - since)}</time>;
}

export const WorkerRow = memo(function WorkerRow(props: RowProps) {
  const { uuid, config, runtime, pending, isNew, offline, logsSupported, onDelete } = props;
  const actions = useActions();
  const rowRef = useRef<HTMLTableRowElement>(null);
  const [optionsOpen, setOptionsOpen] = useState(false);
  useEffect(() => {
    if (isNew) rowRef.current?.scrollIntoView({ block: 'nearest' });
  }, [isNew]);

  const name = displayName({ uuid, config, runtime });
  const state = workerState(props);
  const running = isRunningState(state);
  const address = workerAddress(config);
  const pid = workerPid({ config, runtime });
  const detail = state === 'crashed' ? (runtime?.error ?? (runtime?.exit ? exitText(runtime.exit) : undefined)) : runtime?.error;
  const busy = offline || pending !== undefined;
  const managerUrl = useHub((s) => s.connection.url);

  // A stopped worker is started first; the editor page picks the worker once the manager lists it active.
  // The window opens inside the click, or a popup blocker would stop it (the desktop app hands it to the
  // system browser).
  const openEditor = () => {
    if (!running && !actions.request('set_active', uuid)) return;
    window.open(editorUrl(managerUrl, uuid), '_blank', 'noopener');
  };

  const copy = () => {
    if (address === null) return;
    // Outside a secure context (a non-loopback http page) there is no clipboard API: report, don't throw.
    Promise.resolve()
      .then(() => navigator.clipboard.writeText(address))
      .then(
        () => actions.notify('info', `Copied ${address}`),
        () => actions.notify('error', `Could not copy to the clipboard; the address is ${address}`),
      );
  };

  return (
    <tr ref={rowRef} className={isNew ? 'is-new' : undefined} data-uuid={uuid} data-state={state}>
      <th scope="row">
        <span className="name">{name}</span>
        {isNew && <span className="badge new">new</span>}
        <code className="uuid">{uuid}</code>
      </th>
      <td>
        <span className={`state state-${state}`}>{pending !== undefined ? PENDING_TEXT[pending] : state}</span>
        {detail && <span className="detail">{detail}</span>}
      </td>
      <td>
        <code>{running ? hostPort(config) : '–'}</code>
      </td>
      <td>{running && pid !== null ? pid : '–'}</td>
      <td>{running && runtime?.started_at ? <Uptime since={runtime.started_at} /> : '–'}</td>
      <td className="env" title={envLabel(config)}>
        {envLabel(config)}
      </td>
      <td className="actions">
        {running ? (
          <button type="button" disabled={busy} onClick={() => actions.request('stop_worker', uuid)} aria-label={`Stop ${name}`}>
            Stop
          </button>
        ) : (
          <button type="button" disabled={busy || config === undefined} onClick={() => actions.request('set_active', uuid)} aria-label={`Start ${name}`}>
            Start
          </button>
        )}
        <button type="button" disabled={busy || config === undefined} onClick={() => actions.request('restart_worker', uuid)} aria-label={`Restart ${name}`}>
          Restart
        </button>
        <button type="button" disabled={busy || config === undefined} onClick={openEditor} aria-label={`Open editor of ${name}`}>
          Open editor
        </button>
        <button
          type="button"
          disabled={!logsSupported}
          title={logsSupported ? undefined : 'This manager does not stream logs'}
          onClick={() => actions.openLogs(uuid)}
          aria-label={`Show logs of ${name}`}
        >
          Logs
        </button>
        <button type="button" disabled={!running || address === null} onClick={copy} aria-label={`Copy address of ${name}`}>
          Copy address
        </button>
        <button type="button" className="danger" disabled={busy} onClick={() => onDelete(uuid)} aria-label={`Delete ${name}`}>
          Delete
        </button>
        {runtime !== undefined && (
          // Supervision options (additive: only a manager that reports worker states has them). Shown on
          // demand: two more controls in each of 1,000 rows made filtering the list twice as slow.
          <button type="button" aria-expanded={optionsOpen} onClick={() => setOptionsOpen(!optionsOpen)} aria-label={`Options of ${name}`}>
            {runtime.restart}
            {runtime.autostart !== 'never' ? `, autostart ${runtime.autostart}` : ''}
          </button>
        )}
        {runtime !== undefined && optionsOpen && (
          <span className="options">
            <select
              value={runtime.restart}
              disabled={offline}
              onChange={(e) => actions.setWorkerOptions(uuid, { restart: e.target.value as RestartPolicy })}
              aria-label={`Restart policy of ${name}`}
              title="Restart after a crash"
            >
              {RESTART_POLICIES.map((policy) => (
                <option key={policy} value={policy}>
                  restart: {policy}
                </option>
              ))}
            </select>
            <select
              value={runtime.autostart}
              disabled={offline}
              onChange={(e) => actions.setWorkerOptions(uuid, { autostart: e.target.value as AutostartPolicy })}
              aria-label={`Autostart of ${name}`}
              title="Start when the manager starts (FuncNodes' own autostart key)"
            >
              {AUTOSTART_POLICIES.map((policy) => (
                <option key={policy} value={policy}>
                  autostart: {policy}
                </option>
              ))}
            </select>
          </span>
        )}
      </td>
    </tr>
  );
});
