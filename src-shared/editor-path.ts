/**
 * Where the hub serves the FuncNodes editor for a worker (editor-route.ts). No imports: the dashboard, the
 * desktop app and the CLI build the same URL from it.
 */
export const EDITOR_PREFIX = '/editor/';

/** The editor's path for a worker (uuid already valid). */
export function editorPath(uuid: string): string {
  return `${EDITOR_PREFIX}${encodeURIComponent(uuid)}/`;
}

/** The editor's page on the manager at `managerUrl` (its `ws://` or `wss://` URL). */
export function editorUrl(managerUrl: string, uuid: string): string {
  return new URL(editorPath(uuid), managerUrl.replace(/^ws/, 'http')).href;
}
