/** Live tail of the watched worker's output (`watch_logs`), following new lines unless scrolled up. */
import { useLayoutEffect, useRef } from 'react';
import { useActions, useHub } from '../hub-context.js';

export function LogPanel({ uuid, name }: { uuid: string; name: string }) {
  const actions = useActions();
  const lines = useHub((s) => s.logs[uuid]);
  const ref = useRef<HTMLPreElement>(null);
  const follow = useRef(true);
  useLayoutEffect(() => {
    const pre = ref.current;
    if (pre && follow.current) pre.scrollTop = pre.scrollHeight;
  }, [lines]);
  if (lines === undefined) return null;
  return (
    <section className="logs" aria-labelledby="logs-title">
      <div className="logs-head">
        <h2 id="logs-title">Log of {name}</h2>
        <button type="button" onClick={() => actions.closeLogs(uuid)}>
          Close log
        </button>
      </div>
      <pre
        ref={ref}
        tabIndex={0}
        aria-label={`Output of ${name}`}
        onScroll={(e) => {
          const pre = e.currentTarget;
          follow.current = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 8;
        }}
      >
        {lines.length > 0 ? lines.join('\n') : 'No output yet.'}
      </pre>
    </section>
  );
}
