/**
 * A native modal `<dialog>`: the browser traps focus, closes on Escape and restores focus on close.
 * Rendered only while open, so each opening starts from fresh form state. Children close it through
 * `close`, which goes through the dialog (restoring focus) before the parent unmounts it via `onClose`.
 */
import { useEffect, useRef, type ReactNode } from 'react';

export function Modal({ labelledBy, onClose, children }: { labelledBy: string; onClose: () => void; children: (close: () => void) => ReactNode }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    if (ref.current?.open === false) ref.current.showModal();
  }, []);
  return (
    <dialog ref={ref} aria-labelledby={labelledBy} onClose={onClose} className="modal">
      {children(() => ref.current?.close())}
    </dialog>
  );
}
