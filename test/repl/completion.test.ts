/** Tab completion over a real schema (the AllTypes fixture compiled by buf): by command, where the user stands. */
import {beforeAll, describe, expect, it} from 'vitest';
import {buildSchema, type Schema} from '../../src/services/grpc-client/schema.js';
import {CALL_FLAGS} from '../../src/services/repl/commands.js';
import {complete, type CompletionContext} from '../../src/services/repl/completion.js';
import {initialSelection, selectService} from '../../src/services/repl/scope.js';
import {compileFixture} from '../helpers/call-servers.js';

let schema: Schema;
beforeAll(async () => {
  const {files} = await compileFixture('test/grpc/fixtures/call_all_types.proto');
  schema = buildSchema(files, ['tacostest.v1.AllTypes', 'tacostest.v1.Mirror']);
});

const inPackage = (): CompletionContext => ({schema, selection: initialSelection(schema, {}), headerKeys: []});
const inService = (): CompletionContext => ({
  ...inPackage(),
  selection: selectService(schema, initialSelection(schema, {}), 'AllTypes'),
  headerKeys: ['x-env', 'authorization'],
});

describe('complete', () => {
  it('completes command names', () => {
    expect(complete('', inPackage())[0]).toContain('call');
    // One candidate: the word is complete, a space follows.
    expect(complete('sh', inPackage())).toEqual([['show '], 'sh']);
  });

  it('completes packages, then services of the package', () => {
    expect(complete('package ', inPackage())).toEqual([['tacostest.v1 '], '']);
    expect(complete('service ', inPackage())).toEqual([['AllTypes', 'Mirror'], '']);
    expect(complete('service M', inPackage())).toEqual([['Mirror '], 'M']);
  });

  it("completes a method of the service, or Service.Method in the package, and call's flags", () => {
    expect(complete('call Un', inService())).toEqual([['Unary '], 'Un']);
    expect(complete('call ', inPackage())[0]).toContain('Mirror.Unary');
    // Without a service: a bare name only where one service has it (Unary is in both).
    expect(complete('call ServerS', inPackage())).toEqual([['ServerStream '], 'ServerS']);
    expect(complete('call Un', inPackage())).toEqual([[], 'Un']);
    expect(complete('call Unary --e', inService())).toEqual([['--emit-defaults', '--enrich', '--example'], '--e']);
    expect(complete('call Unary ', inService())[0]).toEqual([...CALL_FLAGS].sort());
    // A value after -d is the user's own.
    expect(complete('call Unary -d ', inService())).toEqual([[], '']);
  });

  it('completes messages and enums for desc, subjects for show, header keys for header -r', () => {
    expect(complete('desc Ec', inService())).toEqual([['Echo', 'EchoMany'], 'Ec']);
    expect(complete('desc Co', inService())).toEqual([['Color '], 'Co']);
    expect(complete('show r', inService())).toEqual([['rpc '], 'r']);
    expect(complete('header -r x', inService())).toEqual([['x-env '], 'x']);
    expect(complete('header ', inService())[0]).toEqual(['-r', 'authorization=', 'x-env=']);
  });
});
