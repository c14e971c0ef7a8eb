/** The new-worker form: name, venv, reference worker and what to copy from it, validated before sending. */
import { useRef, useState, type FormEvent } from 'react';
import { useActions, useHub } from '../hub-context.js';
import { displayName, validateNewWorker, type NewWorkerFieldErrors, type NewWorkerInput, type WorkerItem } from '../worker-view.js';
import { Modal } from './Modal.js';

export function NewWorkerDialog({ workers, onClose }: { workers: WorkerItem[]; onClose: () => void }) {
  const actions = useActions();
  // The original manager sends no manager_info; its own default for in_venv is true.
  const inVenvDefault = useHub((s) => s.info?.in_venv_default ?? true);
  const [input, setInput] = useState<NewWorkerInput>({ name: '', inVenv: inVenvDefault, reference: '', copyLib: false, copyNS: false });
  const [errors, setErrors] = useState<NewWorkerFieldErrors>({});
  const nameRef = useRef<HTMLInputElement>(null);
  const referenceRef = useRef<HTMLSelectElement>(null);
  const update = (patch: Partial<NewWorkerInput>) => setInput((i) => ({ ...i, ...patch }));

  const submit = (event: FormEvent, close: () => void) => {
    event.preventDefault();
    const result = validateNewWorker(input, workers);
    if (!result.ok) {
      setErrors(result.errors);
      (result.errors.name !== undefined ? nameRef : referenceRef).current?.focus();
      return;
    }
    if (actions.createWorker(result.options)) close();
  };

  const hasReference = input.reference !== '';
  return (
    <Modal labelledBy="new-worker-title" onClose={onClose}>
      {(close) => (
        <form noValidate onSubmit={(e) => submit(e, close)} className="form">
          <h2 id="new-worker-title">New worker</h2>
          <label htmlFor="nw-name">Name</label>
          <input
            id="nw-name"
            ref={nameRef}
            autoFocus
            autoComplete="off"
            value={input.name}
            onChange={(e) => {
              update({ name: e.target.value });
              setErrors((current) => ({ ...current, name: undefined }));
            }}
            aria-invalid={errors.name !== undefined}
            aria-describedby={errors.name !== undefined ? 'nw-name-error' : undefined}
          />
          {errors.name !== undefined && (
            <p id="nw-name-error" className="field-error">
              {errors.name}
            </p>
          )}
          <label className="check">
            <input type="checkbox" checked={input.inVenv} onChange={(e) => update({ inVenv: e.target.checked })} />
            <span>
              Create a virtual environment for it (<code>in_venv</code>)
            </span>
          </label>
          <label htmlFor="nw-reference">Reference worker</label>
          <select
            id="nw-reference"
            ref={referenceRef}
            value={input.reference}
            onChange={(e) => update({ reference: e.target.value, ...(e.target.value === '' ? { copyLib: false, copyNS: false } : {}) })}
            aria-invalid={errors.reference !== undefined}
            aria-describedby={errors.reference !== undefined ? 'nw-reference-error' : 'nw-reference-hint'}
          >
            <option value="">None</option>
            {workers.map((w) => (
              <option key={w.uuid} value={w.uuid}>
                {displayName(w)} ({w.uuid})
              </option>
            ))}
          </select>
          {errors.reference !== undefined ? (
            <p id="nw-reference-error" className="field-error">
              {errors.reference}
            </p>
          ) : (
            <p id="nw-reference-hint" className="hint">
              Copy libraries or the nodespace from an existing worker.
            </p>
          )}
          <label className="check">
            <input type="checkbox" disabled={!hasReference} checked={input.copyLib} onChange={(e) => update({ copyLib: e.target.checked })} />
            Copy libraries
          </label>
          <label className="check">
            <input type="checkbox" disabled={!hasReference} checked={input.copyNS} onChange={(e) => update({ copyNS: e.target.checked })} />
            Copy nodespace
          </label>
          <div className="dialog-buttons">
            <button type="button" onClick={close}>
              Cancel
            </button>
            <button type="submit" className="primary">
              Create
            </button>
          </div>
        </form>
      )}
    </Modal>
  );
}
