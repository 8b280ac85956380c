/** `export`: the last call as a command line a shell reads back exactly, with secrets as variables. */
import {execFileSync} from 'node:child_process';
import {credentials} from '@grpc/grpc-js';
import {describe, expect, it} from 'vitest';
import {grpcurlCommandLine, shellQuote, tacosCommandLine, type Reach} from '../../src/services/repl/export.js';

const plaintext: Reach = {
  target: {address: '127.0.0.1:50051', credentials: credentials.createInsecure(), channelOptions: {}, tls: false},
  options: {},
};

/** The words bash makes of a command line (variables left unset). */
function bashWords(line: string): string[] {
  const script = `set -- ${line}; for word in "$@"; do printf '%s\\0' "$word"; done`;
  return execFileSync('bash', ['--norc', '--noprofile', '-c', script], {
    encoding: 'utf8',
    env: {PATH: process.env.PATH},
  })
    .split('\0')
    .slice(0, -1);
}

describe('export', () => {
  const call = {
    method: 'gateway.v1.QueueService/JoinQueue',
    requests: [{eventId: "rock'n'roll night", note: 'a "b" $HOME `x`'}],
    headers: [
      ['x-env', 'dev stage'],
      ['authorization', 'Bearer eyJ.secret.sig'],
      ['x-api-key', 'k-123'],
    ] as Array<[string, string]>,
    enrich: true,
    emitDefaults: false,
  };

  it('quotes every word so the shell reads back what was sent', () => {
    for (const text of ['plain', "it's", 'a b', '$HOME', '`id`', '{"a":"\\n"}', '']) {
      expect(bashWords(`x ${shellQuote(text)}`)).toEqual(['x', text]);
    }
  });

  it('writes a tacos call with the target, headers and request, never the secrets', () => {
    const line = tacosCommandLine(call, plaintext);
    expect(line).not.toContain('eyJ');
    expect(line).not.toContain('k-123');
    expect(bashWords(line)).toEqual([
      'tacos',
      'call',
      '--addr',
      '127.0.0.1:50051',
      '--plaintext',
      '-H',
      'x-env: dev stage',
      '-H',
      'authorization: Bearer ',
      '-H',
      'x-api-key: ',
      '-v',
      'gateway.v1.QueueService/JoinQueue',
      '-d',
      JSON.stringify(call.requests[0]),
    ]);
    expect(line).toContain('"authorization: Bearer $TACOS_TOKEN"');
    expect(line).toContain('"x-api-key: $TACOS_X_API_KEY"');
  });

  it("writes grpcurl's command line: -plaintext, -H, -d, address, method", () => {
    const line = grpcurlCommandLine({...call, headers: [['x-env', 'dev']], enrich: false}, plaintext);
    expect(line).toBe(
      `grpcurl -plaintext -H 'x-env: dev' -d '{"eventId":"rock'\\''n'\\''roll night","note":"a \\"b\\" $HOME \`x\`"}' 127.0.0.1:50051 gateway.v1.QueueService/JoinQueue`,
    );
  });

  it('repeats TLS files and --proto files; a stream sends its requests one after another', () => {
    const tls: Reach = {
      target: {...plaintext.target, address: 'api.example.com:443', tls: true},
      options: {cacert: 'ca dir/ca.pem', servername: 'api', protoFiles: ['a.proto'], importDirs: ['proto']},
    };
    const stream = {...call, headers: [], enrich: false, requests: [{n: 1}, {n: 2}]};
    expect(tacosCommandLine(stream, tls)).toBe(
      `tacos call --addr api.example.com:443 --tls --cacert 'ca dir/ca.pem' --servername api --proto a.proto -I proto gateway.v1.QueueService/JoinQueue -d '{"n":1} {"n":2}'`,
    );
    expect(grpcurlCommandLine(stream, tls)).toBe(
      `grpcurl -cacert 'ca dir/ca.pem' -servername api -proto a.proto -import-path proto -d '{"n":1} {"n":2}' api.example.com:443 gateway.v1.QueueService/JoinQueue`,
    );
  });
});
