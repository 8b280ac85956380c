import {connect, isIP, type NetConnectOpts} from 'node:net';

/** A TCP connect within the timeout. */
export function tcpOpen(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return socketOpen({host, port}, timeoutMs);
}

/** A connect (TCP host and port, or a unix socket's path) within the timeout. */
export function socketOpen(endpoint: NetConnectOpts, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(endpoint);
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

const LOOPBACK_NAMES = new Set(['localhost', 'ip6-localhost']);

/** This machine only: a loopback name or address (127.0.0.0/8, ::1), with or without IPv6 brackets. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (LOOPBACK_NAMES.has(bare)) return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  return isIP(bare) === 6 && (bare === '::1' || /^::ffff:127\./.test(bare));
}
