/** The REPL's command line: Evans's commands and flags, JSON after -d without quotes, bad input as usage errors. */
import {describe, expect, it} from 'vitest';
import {parseCommand, splitWords} from '../../src/services/repl/commands.js';

describe('splitWords', () => {
  it('splits as a shell does: quotes group, backslashes escape', () => {
    expect(splitWords(`header a='x y' b="say \\"hi\\"" c=d\\ e`)).toEqual(['header', 'a=x y', 'b=say "hi"', 'c=d e']);
  });

  it('keeps JSON after -d whole, spaces and quotes included, and several objects as one word', () => {
    expect(splitWords('call Unary -d {"title": "a b", "n": [1, 2]} --enrich')).toEqual([
      'call',
      'Unary',
      '-d',
      '{"title": "a b", "n": [1, 2]}',
      '--enrich',
    ]);
    expect(splitWords('call ClientStream -d {"a": "}"} {"a": 2}')).toEqual([
      'call',
      'ClientStream',
      '-d',
      '{"a": "}"} {"a": 2}',
    ]);
  });
});

describe('parseCommand', () => {
  it('reads call with its flags', () => {
    expect(parseCommand('call Unary --enrich --emit-defaults -d {"title": "x"}')).toEqual({
      name: 'call',
      method: 'Unary',
      enrich: true,
      repeat: false,
      emitDefaults: true,
      data: '{"title": "x"}',
      force: false,
    });
    expect(parseCommand('call --repeat')).toMatchObject({name: 'call', method: '', repeat: true});
    expect(parseCommand('call Unary --example req.json --force')).toMatchObject({example: 'req.json', force: true});
  });

  it('reads header as Evans: key=value pairs, -r or a bare key (or key=) to remove', () => {
    expect(parseCommand('header X-Env=dev token=a=b')).toEqual({
      name: 'header',
      set: [
        ['x-env', 'dev'],
        ['token', 'a=b'],
      ],
      remove: [],
    });
    expect(parseCommand('header -r x-env old new=')).toEqual({
      name: 'header',
      set: [],
      remove: ['x-env', 'old', 'new'],
    });
  });

  it('reads the other commands; an empty line is nothing', () => {
    expect(parseCommand('  ')).toEqual({name: 'none'});
    expect(parseCommand('package gateway.v1')).toEqual({name: 'package', package: 'gateway.v1'});
    expect(parseCommand('service QueueService')).toEqual({name: 'service', service: 'QueueService'});
    expect(parseCommand('show rpc')).toEqual({name: 'show', what: 'rpc'});
    expect(parseCommand('desc JoinQueueRequest')).toEqual({name: 'desc', symbol: 'JoinQueueRequest'});
    expect(parseCommand('export --grpcurl')).toEqual({name: 'export', grpcurl: true});
    expect(parseCommand('quit')).toEqual({name: 'exit'});
  });

  it('refuses bad input with the usage as the hint', () => {
    expect(() => parseCommand('show everything')).toThrow('Cannot show "everything".');
    expect(() => parseCommand('call')).toThrow('call needs a method.');
    expect(() => parseCommand('call Unary --repeat -d {}')).toThrow('no -d with it');
    expect(() => parseCommand('call Unary --wat')).toThrow('Unknown flag "--wat".');
    expect(() => parseCommand('header =x')).toThrow('is not KEY=VALUE');
    expect(() => parseCommand('header Bad:Key=1')).toThrow('is not a metadata key');
    expect(() => parseCommand('package')).toThrow('package needs a package name.');
    try {
      parseCommand('frobnicate');
      expect.unreachable();
    } catch (error) {
      expect(error).toMatchObject({message: 'Unknown command "frobnicate".', exitCode: 2});
      expect((error as {hint: string}).hint).toContain('package, service, call, desc, show, header');
    }
  });
});
