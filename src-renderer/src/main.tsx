/** Entry: resolve the manager URL and its token, create the store and its connection, render the dashboard. */
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './components/App.js';
import { TokenLogin } from './components/TokenLogin.js';
import { HubContext } from './hub-context.js';
import { resolveManagerUrl } from './manager-url.js';
import { createApp } from './store.js';
import { needsToken, pageToken, socketProtocols, TOKEN_KEY, type PageEnv } from './token.js';

declare global {
  interface Window {
    /** Set by the Electron preload (src-preload); absent in a browser. */
    fnwm?: { managerUrl?: string };
  }
}

const page: PageEnv = {
  location: window.location,
  storage: window.sessionStorage,
  replaceUrl: (url) => window.history.replaceState(null, '', url),
};
let token = pageToken(page);

const { store, connection } = createApp({
  url: resolveManagerUrl(window.fnwm?.managerUrl, window.location),
  createSocket: (url) => new WebSocket(url, socketProtocols(token)),
  timers: { setTimeout: (fn, ms) => window.setTimeout(fn, ms), clearTimeout: (handle) => window.clearTimeout(handle as number) },
});

const root = createRoot(document.getElementById('root')!);
/** A browser cannot see the 401: a token whose first connect fails is asked for again. */
let opened = false;
store.subscribe((state) => {
  if (state.connection.status === 'open') opened = true;
  if (opened || token === null || state.connection.status !== 'reconnecting') return;
  connection.stop();
  page.storage.removeItem(TOKEN_KEY);
  token = null;
  askForToken('The manager refused that token, or could not be reached.');
});

function showDashboard(): void {
  connection.start();
  root.render(
    <StrictMode>
      <HubContext value={store}>
        <App />
      </HubContext>
    </StrictMode>,
  );
}

function askForToken(problem?: string): void {
  root.render(
    <StrictMode>
      <TokenLogin
        host={window.location.host}
        problem={problem}
        onDone={(given) => {
          token = given;
          if (given !== null) page.storage.setItem(TOKEN_KEY, given);
          showDashboard();
        }}
      />
    </StrictMode>,
  );
}

if (needsToken(page, window.fnwm !== undefined, token)) askForToken();
else showDashboard();
