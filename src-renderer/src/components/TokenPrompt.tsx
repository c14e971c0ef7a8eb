/**
 * A dashboard opened from another machine, not connected: the manager may want its access token (a
 * browser cannot see the 401). A banner, not a wall: a manager without authentication, or one that is
 * only restarting, shows its state as usual. The token is kept for the browser session (token.ts).
 */
import { useState, type FormEvent } from 'react';
import { useHub } from '../hub-context.js';

/** `host`: the manager's; `inApp`: the desktop app's window, where the app keeps the token. */
export function TokenPrompt({ host, hasToken, inApp, onToken }: { host: string; hasToken: boolean; inApp: boolean; onToken: (token: string) => void }) {
  const status = useHub((s) => s.connection.status);
  const [token, setToken] = useState('');
  if (status === 'open') return null;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (token.trim() === '') return;
    onToken(token.trim());
    setToken('');
  };
  return (
    <form className="token-prompt form" onSubmit={submit} aria-label="Access token">
      <p>
        {hasToken ? 'The Workermanager did not accept this access token, or cannot be reached.' : `The Workermanager on ${host} is reached over the network and may need its access token`}{' '}
        (the file <code>manager_token</code> in its FuncNodes config dir).{' '}
        {inApp ? 'The app keeps it, encrypted where the system offers a keychain.' : 'It is kept for this browser session only.'}
      </p>
      <label>
        Access token
        <input type="password" name="token" autoComplete="off" value={token} onChange={(e) => setToken(e.target.value)} />
      </label>
      <button type="submit" disabled={token.trim() === ''}>
        Connect
      </button>
    </form>
  );
}
