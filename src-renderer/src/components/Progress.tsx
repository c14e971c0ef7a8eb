/**
 * The progress HUD: a status bar fed by `progress` frames, and for `blocking` ones an overlay that keeps
 * the rest of the page inert until the operation ends (`message: ""`) or the user dismisses it.
 */
import { useEffect, useRef } from 'react';
import { useActions, useHub } from '../hub-context.js';

export function StatusBar() {
  const progress = useHub((s) => s.progress);
  const status = useHub((s) => s.connection.status);
  const idle = status === 'open' ? 'Ready' : status === 'closed' ? 'Disconnected' : 'Waiting for the manager…';
  const tone = progress?.status ?? 'idle';
  return (
    <div className={`statusbar tone-${tone}`} role="status" aria-live="polite">
      <span className="status-text">{progress ? (progress.status === 'error' ? `Error: ${progress.message}` : progress.message) : idle}</span>
      {progress && <progress max={1} value={progress.progress} aria-label="Operation progress" />}
    </div>
  );
}

export function useOverlayShown(): boolean {
  return useHub((s) => s.progress?.blocking === true && !s.overlayDismissed);
}

export function BlockingOverlay() {
  const actions = useActions();
  const progress = useHub((s) => s.progress);
  const button = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    // Return focus where it was once the operation is over or dismissed.
    const before = document.activeElement;
    button.current?.focus();
    return () => {
      if (before instanceof HTMLElement && before.isConnected) before.focus();
    };
  }, []);
  if (!progress) return null;
  return (
    <div className="overlay" role="alertdialog" aria-modal="true" aria-labelledby="overlay-text">
      <div className={`overlay-box tone-${progress.status}`}>
        <p id="overlay-text">{progress.message}</p>
        <progress max={1} value={progress.progress} aria-label="Operation progress" />
        <button ref={button} type="button" onClick={actions.dismissOverlay}>
          Dismiss
        </button>
        <p className="hint">Dismissing hides this; the operation goes on, and this worker stays busy until it ends.</p>
      </div>
    </div>
  );
}
