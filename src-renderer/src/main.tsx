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
    fnwm?: { managerUrl?: string; managerToken(): Promise<string | null>; setManagerToken(token: string): Promise<void> };
  }
}

const page: PageEnv = {
  location: window.location,
  storage: window.sessionStorage,
  replaceUrl: (url) => window.history.replaceState(null, '', url),
};
const bridge = window.fnwm;
const managerUrl = resolveManagerUrl(bridge?.managerUrl, window.location);
// The window asks the app (it keeps tokens per manager); a browser page keeps its own for the session.
let token = bridge ? null : pageToken(page);

const { store, connection } = createApp({
  url: managerUrl,
  createSocket: (url) => new WebSocket(url, socketProtocols(token)),
  timers: { setTimeout: (fn, ms) => window.setTimeout(fn, ms), clearTimeout: (handle) => window.clearTimeout(handle as number) },
});

const root = createRoot(document.getElementById('root')!);
function render(): void {
  const prompt = mayNeedToken(managerUrl) ? <TokenPrompt host={new URL(managerUrl).host} hasToken={token !== null} inApp={bridge !== undefined} onToken={applyToken} /> : undefined;
  root.render(
    <StrictMode>
      <HubContext value={store}>
        <App banner={prompt} />
      </HubContext>
    </StrictMode>,
  );
}

/** A new token: kept (for the session, or by the app), and the connection starts over with it. */
function applyToken(given: string): void {
  token = given;
  if (bridge) void bridge.setManagerToken(given).catch((err: unknown) => console.error(`Keeping the token failed: ${(err as Error).message}`));
  else page.storage.setItem(TOKEN_KEY, given);
  connection.stop();
  connection.start();
  render();
}

async function start(): Promise<void> {
  if (bridge) token = await bridge.managerToken().catch(() => null);
  connection.start();
  render();
}
void start();
