/** Evans's package and service selection over a real schema (the AllTypes fixture), and `tacos call --package --service`. */
import {beforeAll, describe, expect, it} from 'vitest';
import {buildSchema, type Schema} from '../../src/services/grpc-client/schema.js';
import {
  initialSelection,
  methodNameIn,
  resolveMethod,
  selectPackage,
  selectService,
} from '../../src/services/repl/scope.js';
import {compileFixture} from '../helpers/call-servers.js';

let schema: Schema;
beforeAll(async () => {
  const {files} = await compileFixture('test/grpc/fixtures/call_all_types.proto');
  schema = buildSchema(files, ['tacostest.v1.AllTypes', 'tacostest.v1.Mirror']);
});

const fullName = (method: {parent: {typeName: string}; name: string}) => `${method.parent.typeName}/${method.name}`;

describe('selection', () => {
  it('selects the only package at start, and its service only when it has one', () => {
    expect(initialSelection(schema, {})).toEqual({package: 'tacostest.v1', service: undefined});
    expect(initialSelection(schema, {service: 'Mirror'})).toEqual({
      package: 'tacostest.v1',
      service: 'tacostest.v1.Mirror',
    });
    expect(() => selectPackage(schema, 'tacostest.v2')).toThrow('No package "tacostest.v2" on this server.');
    expect(() => selectService(schema, {package: 'tacostest.v1'}, 'Mirorr')).toThrow(
      'No service "Mirorr" in package tacostest.v1.',
    );
  });

  it('resolves a bare method in the selected service, where alone it would be ambiguous', () => {
    const inMirror = selectService(schema, {}, 'tacostest.v1.Mirror');
    expect(fullName(resolveMethod(schema, inMirror, 'Unary'))).toBe('tacostest.v1.Mirror/Unary');
    expect(fullName(resolveMethod(schema, inMirror, 'AllTypes.Unary'))).toBe('tacostest.v1.AllTypes/Unary');
    expect(() => resolveMethod(schema, {package: 'tacostest.v1'}, 'Unary')).toThrow('is ambiguous');
  });
});

describe('methodNameIn (tacos call --package --service)', () => {
  it('makes the one name tacos call resolves', () => {
    expect(methodNameIn({package: 'gateway.v1', service: 'QueueService'}, 'JoinQueue')).toBe(
      'gateway.v1.QueueService.JoinQueue',
    );
    expect(methodNameIn({package: 'gateway.v1', service: 'gateway.v1.QueueService'}, 'JoinQueue')).toBe(
      'gateway.v1.QueueService.JoinQueue',
    );
    expect(methodNameIn({service: 'QueueService'}, 'JoinQueue')).toBe('QueueService.JoinQueue');
    expect(methodNameIn({}, 'QueueService.JoinQueue')).toBe('QueueService.JoinQueue');
    expect(() => methodNameIn({package: 'gateway.v1'}, 'JoinQueue')).toThrow('--package needs --service too.');
  });
});
