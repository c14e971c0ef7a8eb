/**
 * How a browser hands the manager's token over on the WebSocket upgrade (browsers cannot set headers):
 * as a subprotocol. The plain `fnwm` is offered first, so the server picks it and never echoes the token.
 * Shared by the hub's check (remote-auth.ts) and the dashboard; no Node imports.
 */
export const TOKEN_PROTOCOL_PREFIX = 'fnwm-token.';

export function tokenProtocols(token: string): string[] {
  return ['fnwm', `${TOKEN_PROTOCOL_PREFIX}${token}`];
}
