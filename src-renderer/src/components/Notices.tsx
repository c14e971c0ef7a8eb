/** Errors from the manager (and local messages), each dismissible; info messages go away by themselves. */
import { useEffect } from 'react';
import { useActions, useHub } from '../hub-context.js';
import type { Notice } from '../hub-state.js';

const INFO_MS = 4000;

function NoticeItem({ notice }: { notice: Notice }) {
  const actions = useActions();
  useEffect(() => {
    if (notice.tone !== 'info') return;
    const timer = setTimeout(() => actions.dismissNotice(notice.id), INFO_MS);
    return () => clearTimeout(timer);
  }, [notice, actions]);
  return (
    <li className={`notice tone-${notice.tone}`} role={notice.tone === 'error' ? 'alert' : 'status'}>
      <span>{notice.text}</span>
      <button type="button" onClick={() => actions.dismissNotice(notice.id)} aria-label="Dismiss notice">
        ×
      </button>
    </li>
  );
}

export function Notices() {
  const notices = useHub((s) => s.notices);
  if (notices.length === 0) return null;
  return (
    <ul className="notices" aria-label="Notices">
      {notices.map((n) => (
        <NoticeItem key={n.id} notice={n} />
      ))}
    </ul>
  );
}
