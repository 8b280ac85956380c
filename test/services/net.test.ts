/** What counts as this machine, for bench targets, call's plaintext default and the gateway's SERVER_HOST check alike. */
import {describe, expect, it} from 'vitest';
import {isLoopbackHost} from '../../src/services/net.js';

describe('isLoopbackHost', () => {
  it('takes loopback names and addresses, IPv6 with or without brackets', () => {
    for (const host of [
      'localhost',
      'LOCALHOST',
      'ip6-localhost',
      '127.0.0.1',
      '127.3.2.1',
      '::1',
      '[::1]',
      '::ffff:127.0.0.1',
    ]) {
      expect(isLoopbackHost(host), host).toBe(true);
    }
  });

  it('refuses other hosts, including ones that only look close', () => {
    for (const host of [
      'example.com',
      '10.0.0.1',
      '128.0.0.1',
      '::2',
      '[::ffff:10.0.0.1]',
      'localhost.example.com',
      '127.0.0.1.nip.io',
      '',
    ]) {
      expect(isLoopbackHost(host), host).toBe(false);
    }
  });
});
