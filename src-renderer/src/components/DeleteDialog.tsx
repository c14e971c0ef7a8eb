/** Confirms a delete, naming the worker and every file and directory the manager will remove. */
import { useActions, useHub } from '../hub-context.js';
import { Modal } from './Modal.js';

export function DeleteDialog({ uuid, name, running, onClose }: { uuid: string; name: string; running: boolean; onClose: () => void }) {
  const actions = useActions();
  // Only a manager with the additive protocol says where its workers dir is.
  const workersDir = useHub((s) => s.info?.workers_dir);
  const base = `worker_${uuid}`;
  return (
    <Modal labelledBy="delete-title" onClose={onClose}>
      {(close) => (
        <>
          <h2 id="delete-title">Delete worker “{name}”?</h2>
          {running && <p>It is running and will be stopped first.</p>}
          <p>This removes from {workersDir !== undefined ? <code>{workersDir}</code> : 'the workers directory'}:</p>
          <ul className="file-list">
            <li>
              <code>{base}.json</code> (its configuration)
            </li>
            <li>
              <code>{base}.p</code> and <code>{base}.runstate</code> (process and start state)
            </li>
            <li>
              <code>{base}/</code> (its data directory, with its nodespace and files)
            </li>
          </ul>
          <p>This cannot be undone.</p>
          <div className="dialog-buttons">
            <button type="button" autoFocus onClick={close}>
              Cancel
            </button>
            <button type="button" className="danger" onClick={() => actions.request('delete_worker', uuid) && close()}>
              Delete “{name}”
            </button>
          </div>
        </>
      )}
    </Modal>
  );
}
