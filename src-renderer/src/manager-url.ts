/**
 * Which manager the UI talks to: the Electron preload's URL, else a `?ws=` query, else the manager that
 * served this page (its own origin, over ws: or wss: to match the page).
 */
export interface PageLocation {
  protocol: string;
  host: string;
  search: string;
}

export function resolveManagerUrl(bridgeUrl: string | undefined, location: PageLocation): string {
  if (bridgeUrl) return bridgeUrl;
  const fromQuery = new URLSearchParams(location.search).get('ws');
  if (fromQuery) return fromQuery;
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`;
}

