/** Which manager this UI talks to, whether the connection is up, and what the manager says it is. */
import { useHub } from '../hub-context.js';

export function ConnectionInfo() {
  const connection = useHub((s) => s.connection);
  const identity = useHub((s) => s.identity);
  const info = useHub((s) => s.info);
  const text =
    connection.status === 'open'
      ? 'Connected'
      : connection.status === 'connecting'
        ? 'Connecting…'
        : connection.status === 'reconnecting'
          ? `Reconnecting (attempt ${connection.attempt}, next in ${Math.round(connection.delayMs / 100) / 10} s)`
          : 'Disconnected';
  const py = info?.py ?? identity?.py;
  return (
    <div className="connection" aria-label="Connection">
      <span className={`dot conn-${connection.status}`} aria-hidden="true" />
      <span className="conn-text" data-status={connection.status}>
        {text}
      </span>
      <code className="conn-url">{connection.url}</code>
      {connection.status === 'open' && (info || identity) && (
        <span className="identity">
          {info ? `Workermanager ${info.version}` : 'Workermanager'}
          {py !== undefined && (
            <>
              {' · Python '}
              <code>{py}</code>
            </>
          )}
        </span>
      )}
    </div>
  );
}
