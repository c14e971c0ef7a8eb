/**
 * How a browser hands the manager's token over on the WebSocket upgrade (browsers cannot set headers):
 * as a subprotocol. The plain `fnwm` is offered first, so the server picks it and never echoes the token.
 * Shared by the hub's check (remote-auth.ts), the desktop app and the dashboard; no Node imports.
 */
export const TOKEN_PROTOCOL_PREFIX = 'fnwm-token.';

/** A host name that means this machine (a page or manager there needs no token). */
export function isLoopbackHostname(hostname: string): boolean {
  const bare = hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return bare === 'localhost' || bare.endsWith('.localhost') || bare === '::1' || /^127\.\d+\.\d+\.\d+$/.test(bare);
}

export function tokenProtocols(token: string): string[] {
  return ['fnwm', `${TOKEN_PROTOCOL_PREFIX}${token}`];
}
