/**
 * A first, minimal client of the hub: it asks for `worker_status` and lists what the broadcasts say.
 * The full UI (store, actions, progress HUD) is built by the renderer issue on this same protocol module.
 */
import { StrictMode, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { parseManagerFrame, type WorkerStatusMessage } from '../../src-main/core/protocol';

declare global {
  interface Window {
    fnwm?: { managerUrl?: string };
  }
}

function managerUrl(): string {
  const fromQuery = new URLSearchParams(location.search).get('ws');
  return window.fnwm?.managerUrl ?? fromQuery ?? `ws://${location.host}`;
}

function App() {
  const [status, setStatus] = useState<WorkerStatusMessage>();
  const [state, setState] = useState('connecting');
  useEffect(() => {
    const ws = new WebSocket(managerUrl());
    ws.onopen = () => {
      setState('connected');
      ws.send('worker_status');
    };
    ws.onclose = () => setState('disconnected');
    ws.onmessage = (event) => {
      const frame = parseManagerFrame(String(event.data));
      if (frame.kind === 'message' && frame.message.type === 'worker_status') setStatus(frame.message);
    };
    return () => ws.close();
  }, []);
  const rows = status ? [...status.active.map((w) => ({ w, active: true })), ...status.inactive.map((w) => ({ w, active: false }))] : [];
  return (
    <main>
      <h1>FuncNodes Workermanager</h1>
      <p role="status">Manager: {state}</p>
      <ul aria-label="Workers">
        {rows.map(({ w, active }) => (
          <li key={w.uuid}>
            {w.name ?? w.uuid} ({w.uuid}) — {active ? 'active' : 'inactive'}
          </li>
        ))}
      </ul>
    </main>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
