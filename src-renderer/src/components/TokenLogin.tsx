/** Asked once per browser session when the dashboard is opened from another machine (see token.ts). */
import { useState, type FormEvent } from 'react';

export function TokenLogin({ host, problem, onDone }: { host: string; problem?: string; onDone: (token: string | null) => void }) {
  const [token, setToken] = useState('');
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (token.trim() !== '') onDone(token.trim());
  };
  return (
    <main className="login">
      <h1>FuncNodes Workermanager</h1>
      <form className="form" onSubmit={submit} aria-labelledby="login-title">
        <h2 id="login-title">Access token</h2>
        {problem !== undefined && (
          <p className="notice error" role="alert">
            {problem}
          </p>
        )}
        <p>
          The Workermanager on <code>{host}</code> is reached over the network and needs its access token: the file{' '}
          <code>manager_token</code> in its FuncNodes config dir (for example <code>~/.funcnodes/manager_token</code>). It is kept for this
          browser session only.
        </p>
        <label>
          Token
          <input type="password" name="token" autoComplete="off" autoFocus value={token} onChange={(e) => setToken(e.target.value)} />
        </label>
        <div className="dialog-buttons">
          <button type="button" onClick={() => onDone(null)}>
            Connect without a token
          </button>
          <button type="submit" disabled={token.trim() === ''}>
            Connect
          </button>
        </div>
      </form>
    </main>
  );
}
