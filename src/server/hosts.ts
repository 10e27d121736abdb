/**
 * Which Host headers the server answers, against DNS rebinding: a web page whose own name the
 * attacker re-points at 127.0.0.1 reaches a local server from the victim's browser, but its requests
 * still carry the attacker's name in Host. So only the names the server is really reached by are
 * served: the bound address, the loopback names when bound to loopback, the machine's own names and
 * addresses when bound to every interface, and whatever `--allowed-hosts` adds.
 */
import net from 'node:net';
import os from 'node:os';

/** Allows every Host (e.g. behind a reverse proxy that checks it). */
export const ANY_HOST = '*';

/** The names a loopback server is reached by. */
export const LOOPBACK_HOSTS: readonly string[] = ['localhost', '127.0.0.1', '[::1]'];

/** `address` as it appears in a Host header: lower case, IPv6 in brackets. */
function hostName(address: string): string {
  const name = address.toLowerCase();
  return net.isIPv6(name) ? `[${name}]` : name;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (net.isIPv4(host) && host.startsWith('127.'));
}

function isWildcard(host: string): boolean {
  return host === '' || host === '0.0.0.0' || host === '::';
}

/** The Host names a server bound to `bindHost` answers by default, plus `extra`. */
export function allowedHostsFor(bindHost: string, extra: readonly string[] = []): string[] {
  const bound = isWildcard(bindHost) ? [...LOOPBACK_HOSTS, os.hostname(), ...interfaceAddresses()] : isLoopback(bindHost) ? [bindHost, ...LOOPBACK_HOSTS] : [bindHost];
  return [...new Set([...bound, ...extra].map(hostName))];
}

function interfaceAddresses(): string[] {
  return Object.values(os.networkInterfaces()).flatMap((addresses) => (addresses ?? []).map(({ address }) => address));
}

/** Whether a request's Host header (name and optional port) is one of `allowed`. */
export function isAllowedHost(header: string | undefined, allowed: ReadonlySet<string>): boolean {
  if (allowed.has(ANY_HOST)) return true;
  if (!header) return false;
  // The port is whatever the client connected to; only the name tells a rebinding apart.
  const name = header.toLowerCase().replace(/:\d*$/, '');
  return allowed.has(name);
}
