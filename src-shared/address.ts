/**
 * Addresses clients dial. A bind host may be a wildcard (`''`, `0.0.0.0`, `::`, `[::]`), which no client can
 * dial: loopback of the same family reaches it. Shared by the manager, the CLI and the dashboard; no Node imports.
 */

/** A bind host that means every interface (spec §9); `undefined` is an unset host, bound like `''`. */
export function isWildcardHost(host: string | undefined): boolean {
  return host === undefined || host === '' || host === '0.0.0.0' || host === '::' || host === '[::]';
}

/** The host to dial for a bind host, without brackets: an IPv4 wildcard → 127.0.0.1, an IPv6 one → ::1. */
export function dialableHost(host: string | undefined): string {
  if (host === '::' || host === '[::]') return '::1';
  if (isWildcardHost(host)) return '127.0.0.1';
  return host!.replace(/^\[(.*)\]$/, '$1');
}

/**
 * The host a FuncNodes page is told for a worker (`set_worker`, the editor's `/worker`): a wildcard is
 * 127.0.0.1 (an IPv6 wildcard bind takes IPv4 too), since the web UI puts it into a URL without brackets.
 */
export function pageHost(host: string | undefined): string {
  return isWildcardHost(host) ? '127.0.0.1' : host!;
}

/** `ws[s]://host:port` for a bind host and port; an IPv6 literal is bracketed exactly once. */
export function wsUrl(host: string | undefined, port: number, ssl = false): string {
  const dial = dialableHost(host);
  return `${ssl ? 'wss' : 'ws'}://${dial.includes(':') ? `[${dial}]` : dial}:${port}`;
}
