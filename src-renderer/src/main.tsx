/** Entry: resolve the manager URL, create the store and its connection, render the dashboard. */
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './components/App.js';
import { HubContext } from './hub-context.js';
import { resolveManagerUrl } from './manager-url.js';
import { createApp } from './store.js';

declare global {
  interface Window {
    /** Set by the Electron preload (src-preload); absent in a browser. */
    fnwm?: { managerUrl?: string };
  }
}

const { store, connection } = createApp({
  url: resolveManagerUrl(window.fnwm?.managerUrl, window.location),
  createSocket: (url) => new WebSocket(url),
  timers: { setTimeout: (fn, ms) => window.setTimeout(fn, ms), clearTimeout: (handle) => window.clearTimeout(handle as number) },
});
connection.start();

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <HubContext value={store}>
      <App />
    </HubContext>
  </StrictMode>,
);
