import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, expect, it} from 'vitest';
import {runCall} from '../../src/services/grpc-client/run-call.js';
import {startAllTypesServer, type TestServer} from '../helpers/call-servers.js';

let server: TestServer | undefined;
let dir: string;

beforeAll(async () => {
  server = await startAllTypesServer({reflection: 'none'});
  dir = await mkdtemp(path.join(tmpdir(), 'tacos-call-unknown-'));
  // An older copy of the contract: Echo without the fields the server now sends.
  await writeFile(
    path.join(dir, 'old.proto'),
    'syntax = "proto3";\npackage tacostest.v1;\nservice AllTypes { rpc Unary(Request) returns (Echo); }\nmessage Request { string title = 50; }\nmessage Echo { int32 index = 3; }\n',
  );
});

afterAll(async () => {
  await server?.stop();
  await rm(dir, {recursive: true, force: true});
});

it('says so when a response carries fields the schema does not know, instead of dropping them quietly', async () => {
  let out = '';
  let err = '';
  const code = await runCall(
    {
      address: server!.address,
      headers: [],
      refresh: false,
      connectTimeoutMs: 3000,
      protoFiles: [path.join(dir, 'old.proto')],
      emitDefaults: false,
      protoNames: false,
      verbose: false,
      json: false,
      method: 'AllTypes.Unary',
      data: '{"title":"x"}',
    },
    {out: (text) => (out += text), err: (text) => (err += text), readStdin: async () => '', interactive: false},
    async () => {
      throw new Error('no prompts in this test');
    },
  );
  expect(code).toBe(0);
  expect(out).not.toContain('"got"');
  expect(err).toMatch(/response has fields the schema does not know/);
});
