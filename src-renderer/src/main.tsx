/** Entry: resolve the manager URL and its token, create the store and its connection, render the dashboard. */
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './components/App.js';
import { TokenPrompt } from './components/TokenPrompt.js';
import { HubContext } from './hub-context.js';
import { resolveManagerUrl } from './manager-url.js';
import { createApp } from './store.js';
import { mayNeedToken, pageToken, socketProtocols, TOKEN_KEY, type PageEnv } from './token.js';

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
connection.start();

const root = createRoot(document.getElementById('root')!);
function render(): void {
  const prompt = mayNeedToken(page, window.fnwm !== undefined) ? <TokenPrompt host={window.location.host} hasToken={token !== null} onToken={applyToken} /> : undefined;
  root.render(
    <StrictMode>
      <HubContext value={store}>
        <App banner={prompt} />
      </HubContext>
    </StrictMode>,
  );
}

/** A new token: kept for the session, and the connection starts over with it. */
function applyToken(given: string): void {
  token = given;
  page.storage.setItem(TOKEN_KEY, given);
  connection.stop();
  connection.start();
  render();
}

render();
