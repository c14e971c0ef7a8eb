/** The dashboard: connection, status bar, notices, the worker list, dialogs, the log panel and the overlay. */
import { useCallback, useMemo, useState, type ReactNode } from 'react';
import { isRunningState } from '../../../src-shared/protocol.js';
import { useHub } from '../hub-context.js';
import { displayName, workerItems, workerState } from '../worker-view.js';
import { ConnectionInfo } from './ConnectionInfo.js';
import { DeleteDialog } from './DeleteDialog.js';
import { LogPanel } from './LogPanel.js';
import { NewWorkerDialog } from './NewWorkerDialog.js';
import { Notices } from './Notices.js';
import { BlockingOverlay, StatusBar, useOverlayShown } from './Progress.js';
import { WorkerList } from './WorkerList.js';

/** `banner`: shown above the notices (the access-token prompt of a dashboard opened from another machine). */
export function App({ banner }: { banner?: ReactNode } = {}) {
  const active = useHub((s) => s.active);
  const inactive = useHub((s) => s.inactive);
  const runtime = useHub((s) => s.runtime);
  const logsOf = useHub((s) => Object.keys(s.logs)[0]);
  const overlay = useOverlayShown();
  const items = useMemo(() => workerItems({ active, inactive, runtime }), [active, inactive, runtime]);
  const [creating, setCreating] = useState(false);
  const [deleting, setDeleting] = useState<string | null>(null);
  const onDelete = useCallback((uuid: string) => setDeleting(uuid), []);
  const onNew = useCallback(() => setCreating(true), []);
  const byId = (uuid: string | null | undefined) => items.find((i) => i.uuid === uuid);
  const toDelete = byId(deleting);
  const logItem = byId(logsOf);

  return (
    <>
      <div className="app" inert={overlay}>
        <header className="topbar">
          <h1>FuncNodes Workermanager</h1>
          <ConnectionInfo />
        </header>
        <StatusBar />
        {banner}
        <Notices />
        <main>
          <WorkerList items={items} onNew={onNew} onDelete={onDelete} />
          {logsOf !== undefined && <LogPanel uuid={logsOf} name={logItem ? displayName(logItem) : logsOf} />}
        </main>
      </div>
      {creating && <NewWorkerDialog workers={items} onClose={() => setCreating(false)} />}
      {toDelete && (
        <DeleteDialog
          uuid={toDelete.uuid}
          name={displayName(toDelete)}
          running={isRunningState(workerState(toDelete))}
          onClose={() => setDeleting(null)}
        />
      )}
      {overlay && <BlockingOverlay />}
    </>
  );
}
