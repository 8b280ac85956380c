/** Log lines: the main logger redacts secrets; the per-request access logger keeps every binding (pid included). */
import {Writable} from 'node:stream';
import {describe, expect, it} from 'vitest';
import {accessLogger, createLogger} from '../../src/services/logging.js';

function sink() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return {lines, stream};
}

describe('logging', () => {
  it('access lines go to the same stream with the service and the child bindings of their logger', () => {
    const {lines, stream} = sink();
    const worker = createLogger('gateway', 'info', stream).child({pid: 4242});
    accessLogger(worker).info({req_id: 'r-1', method: 'POST', status: 202}, 'http request');
    worker.info('gateway listening');
    expect(lines).toEqual([
      expect.objectContaining({
        service: 'gateway',
        pid: 4242,
        req_id: 'r-1',
        status: 202,
        msg: 'http request',
        level: 'info',
      }),
      expect.objectContaining({service: 'gateway', pid: 4242, msg: 'gateway listening'}),
    ]);
  });

  it('the main logger still redacts secrets, and the access logger follows its level', () => {
    const {lines, stream} = sink();
    const logger = createLogger('gateway', 'warn', stream);
    logger.warn({headers: {authorization: 'Bearer secret'}, request: {token: 'secret'}}, 'odd request');
    accessLogger(logger).info({req_id: 'r-2'}, 'http request');
    expect(lines).toHaveLength(1);
    expect(JSON.stringify(lines[0])).not.toContain('secret');
  });
});
