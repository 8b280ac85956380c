/**
 * The gateway's gRPC door, end to end: a real redis-server on a free port, the gateway in this
 * process on 127.0.0.1:0, and real clients (a hand-written reflection client over v1 and v1alpha,
 * grpc.health.v1, the contract clients) checking what a strict client would.
 */
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import {
  create,
  createFileRegistry,
  fromBinary,
  type DescMessage,
  type FileRegistry,
  type Message,
} from '@bufbuild/protobuf';
import {
  anyUnpack,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
  type FileDescriptorProto,
} from '@bufbuild/protobuf/wkt';
import {SignJWT} from 'jose';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {loadContractSet} from '../../src/services/contracts.js';
import {getJson, postJson, startTestGateway, waitForReady, type TestGateway} from '../helpers/gateway.js';
import {contractClient, unaryCall} from '../helpers/grpc-client.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';
import {parseMetrics, type Sample} from '../helpers/metrics.js';

type AnyClient = grpc.Client & Record<string, any>;

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const REFLECTION_PROTO_DIR = path.join(repoRoot, 'node_modules', '@grpc', 'reflection', 'build', 'proto');
const HEALTH_PROTO = path.join(repoRoot, 'node_modules', 'grpc-health-check', 'proto', 'health', 'v1', 'health.proto');

const JWT_SECRET = 'grpc-test-secret-0123456789abcdef0123456789';
const JWT_ISSUER = 'tacos-tests';
const JWT_AUDIENCE = 'tacos-gateway';
const DEV_TOKEN = 'tacos-dev-token';

// ---------------------------------------------------------------------------------------------
// Small real clients

const RAW_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
};

/** A grpc.reflection.<version>.ServerReflection client from the protos that ship with @grpc/reflection. */
function reflectionClient(version: 'v1' | 'v1alpha', address: string): AnyClient {
  const definition = protoLoader.loadSync(`grpc/reflection/${version}/reflection.proto`, {
    ...RAW_LOADER_OPTIONS,
    includeDirs: [REFLECTION_PROTO_DIR],
  });
  const service = definition[`grpc.reflection.${version}.ServerReflection`] as grpc.ServiceDefinition;
  const Client = grpc.makeGenericClientConstructor(service, 'ServerReflection');
  return new Client(address, grpc.credentials.createInsecure()) as AnyClient;
}

/** One ServerReflectionInfo exchange: every request written, the stream half-closed, every answer read. */
function reflect(client: AnyClient, requests: Array<Record<string, unknown>>): Promise<Array<Record<string, any>>> {
  return new Promise((resolve, reject) => {
    const call = client.ServerReflectionInfo({deadline: Date.now() + 10_000}) as grpc.ClientDuplexStream<
      unknown,
      Record<string, any>
    >;
    const responses: Array<Record<string, any>> = [];
    call.on('data', (response) => responses.push(response));
    call.on('error', reject);
    call.on('end', () => resolve(responses));
    for (const request of requests) call.write({host: '', ...request});
    call.end();
  });
}

function healthClient(address: string): AnyClient {
  const definition = protoLoader.loadSync(HEALTH_PROTO, {...RAW_LOADER_OPTIONS, defaults: true});
  const Client = grpc.makeGenericClientConstructor(
    definition['grpc.health.v1.Health'] as grpc.ServiceDefinition,
    'Health',
  );
  return new Client(address, grpc.credentials.createInsecure()) as AnyClient;
}

/**
 * A registry from exactly these files, dependencies first. (createFileRegistry(file, resolve) of
 * @bufbuild/protobuf orders shared imports wrongly for a diamond such as gateway.proto's, so the
 * files are sorted here; every import must still be among them, or createFileRegistry throws.)
 */
function strictRegistry(files: FileDescriptorProto[]): FileRegistry {
  const byName = new Map(files.map((file) => [file.name, file]));
  const sorted: FileDescriptorProto[] = [];
  const placed = new Set<string>();
  const place = (file: FileDescriptorProto, depth: number) => {
    if (placed.has(file.name) || depth > files.length) return;
    for (const dependency of file.dependency) {
      const found = byName.get(dependency);
      if (found) place(found, depth + 1);
    }
    placed.add(file.name);
    sorted.push(file);
  };
  for (const file of files) place(file, 0);
  return createFileRegistry(create(FileDescriptorSetSchema, {file: sorted}));
}

interface CallOutcome {
  response?: Record<string, any>;
  error?: grpc.ServiceError;
  headers?: grpc.Metadata;
  trailers?: grpc.Metadata;
}

/** A unary call that never rejects: the answer or the error, plus response headers and trailers. */
function callWithMetadata(
  client: AnyClient,
  method: string,
  request: unknown,
  metadata = new grpc.Metadata(),
): Promise<CallOutcome> {
  return new Promise((resolve) => {
    const outcome: CallOutcome = {};
    let pending = 2;
    const done = () => {
      pending -= 1;
      if (pending === 0) resolve(outcome);
    };
    const call = client[method](
      request,
      metadata,
      {deadline: Date.now() + 10_000},
      (error: grpc.ServiceError | null, response: Record<string, any>) => {
        if (error) outcome.error = error;
        else outcome.response = response;
        done();
      },
    ) as grpc.ClientUnaryCall;
    call.on('metadata', (headers) => (outcome.headers = headers));
    call.on('status', (status) => {
      outcome.trailers = status.metadata;
      done();
    });
  });
}

function bearer(token: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  return metadata;
}

function withRequestId(id: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set('x-request-id', id);
  return metadata;
}

/** exp: null for a token without one. */
async function hs256(
  secret: string,
  claims: {sub?: string; iss?: string; aud?: string; exp?: number | string | null; iat?: number} = {},
): Promise<string> {
  const jwt = new SignJWT({}).setProtectedHeader({alg: 'HS256', typ: 'JWT'});
  if (claims.sub !== undefined) jwt.setSubject(claims.sub);
  jwt.setIssuer(claims.iss ?? JWT_ISSUER);
  jwt.setAudience(claims.aud ?? JWT_AUDIENCE);
  jwt.setIssuedAt(claims.iat);
  if (claims.exp !== null) jwt.setExpirationTime(claims.exp ?? '5m');
  return jwt.sign(new TextEncoder().encode(secret));
}

/** The google.rpc.Status in grpc-status-details-bin, decoded with the contracts' registry, Any details unpacked. */
async function statusDetails(
  error: grpc.ServiceError | undefined,
): Promise<{status: Record<string, any>; details: Array<Message & Record<string, any>>}> {
  expect(error, 'expected the call to fail').toBeDefined();
  const contracts = await loadContractSet();
  const raw = error!.metadata?.get('grpc-status-details-bin')[0];
  expect(Buffer.isBuffer(raw), 'grpc-status-details-bin is present').toBe(true);
  const statusDesc = contracts.registry.getMessage('google.rpc.Status') as DescMessage;
  const status = fromBinary(statusDesc, raw as Buffer) as Message & Record<string, any>;
  const details = (status.details as Parameters<typeof anyUnpack>[0][]).map((any) => {
    const unpacked = anyUnpack(any, contracts.registry);
    expect(unpacked, `detail ${any.typeUrl} unpacks with the contracts' registry`).toBeDefined();
    return unpacked as Message & Record<string, any>;
  });
  return {status, details};
}

async function errorCodeNumber(name: string): Promise<number> {
  const contracts = await loadContractSet();
  const value = contracts.registry.getEnum('common.v1.ErrorCode')?.values.find((v) => v.name === name);
  expect(value, `${name} is in common.v1.ErrorCode`).toBeDefined();
  return value!.number;
}

function sampleValue(samples: Sample[], name: string, labels: Record<string, string>): number {
  return samples
    .filter(
      (sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
    )
    .reduce((sum, sample) => sum + sample.value, 0);
}

async function metrics(gateway: TestGateway): Promise<Sample[]> {
  const response = await fetch(`${gateway.http}/metrics`, {signal: AbortSignal.timeout(5000)});
  expect(response.status).toBe(200);
  return parseMetrics(await response.text());
}

async function until<T>(
  what: string,
  deadlineMs: number,
  probe: () => Promise<T>,
  accept: (value: T) => boolean,
): Promise<{value: T; ms: number}> {
  const started = Date.now();
  let last: T | undefined;
  for (let attempt = 0; attempt < 1000; attempt += 1) {
    last = await probe();
    if (accept(last)) return {value: last, ms: Date.now() - started};
    if (Date.now() - started > deadlineMs) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${what}: not reached within ${deadlineMs} ms (last: ${JSON.stringify(last)})`);
}

// ---------------------------------------------------------------------------------------------

let redis: RedisProcess | undefined;
let gateway: TestGateway | undefined;
let production: TestGateway | undefined;
const clients: AnyClient[] = [];

function track<T extends AnyClient>(client: T): T {
  clients.push(client);
  return client;
}

const gw = () => gateway as TestGateway;

beforeAll(async () => {
  redis = await startRedis();
  gateway = await startTestGateway({
    REDIS_ADDRESS: redis.address,
    SERVER_ENVIRONMENT: 'development',
    JWT_SECRET,
    JWT_ISSUER,
    JWT_AUDIENCE,
  });
  // startGateway resolves before its Redis connection is ready; gate on /readyz as `tacos up` does.
  await waitForReady(gateway);
});

afterAll(async () => {
  for (const client of clients) client.close();
  await production?.close();
  await gateway?.close();
  await gateway?.close();
  await disposeRedis(redis);
  await disposeRedis(redis);
});

describe('server reflection', () => {
  for (const version of ['v1', 'v1alpha'] as const) {
    describe(`grpc.reflection.${version}`, () => {
      it('lists the queue, websocket and health services, and only services the server registers', async () => {
        const client = track(reflectionClient(version, gw().grpc));
        const [answer] = await reflect(client, [{list_services: '*'}]);
        expect(answer.error_response).toBeFalsy();
        const names = (answer.list_services_response.service as Array<{name: string}>).map((service) => service.name);
        expect(names).toEqual(
          expect.arrayContaining(['gateway.v1.QueueService', 'gateway.v1.WebSocketService', 'grpc.health.v1.Health']),
        );
        expect(names).not.toContain('reservation.v1.ReservationService');
        expect(names).not.toContain('payment.v1.PaymentService');
      });

      it('answers file_containing_symbol with descriptors a strict client resolves', async () => {
        const client = track(reflectionClient(version, gw().grpc));
        const [answer] = await reflect(client, [{file_containing_symbol: 'gateway.v1.QueueService'}]);
        expect(answer.error_response).toBeFalsy();
        const files = (answer.file_descriptor_response.file_descriptor_proto as Buffer[]).map((bytes) =>
          fromBinary(FileDescriptorProtoSchema, bytes),
        );
        const names = files.map((file) => file.name);
        expect(names[0]).toBe('proto/gateway/v1/queue.proto');
        expect(names).toEqual(
          expect.arrayContaining(['google/protobuf/timestamp.proto', 'proto/common/v1/errors.proto']),
        );
        // The original import paths, not one synthesized file per package with no dependencies.
        expect(files[0].dependency).toEqual(
          expect.arrayContaining(['google/protobuf/timestamp.proto', 'proto/common/v1/errors.proto']),
        );

        // Strict resolution from exactly the returned files: an unresolvable import throws here.
        const byName = new Map(files.map((file) => [file.name, file]));
        const registry: FileRegistry = createFileRegistry(files[0], (name) => byName.get(name));
        const response = registry.getMessage('gateway.v1.JoinQueueResponse');
        expect(response).toBeDefined();
        const expiresAt = response!.fields.find((field) => field.name === 'expires_at');
        expect(expiresAt?.message?.typeName).toBe('google.protobuf.Timestamp');
        const error = response!.fields.find((field) => field.name === 'error');
        expect(error?.message?.typeName).toBe('common.v1.Error');
        expect(registry.getService('gateway.v1.QueueService')?.methods.map((method) => method.name)).toEqual(
          expect.arrayContaining(['JoinQueue', 'GetQueueStatus', 'RequestAdmission', 'LeaveQueue', 'GetQueueStats']),
        );

        // Map entries as a compiler writes them.
        const queueMetadata = files[0].messageType.find((message) => message.name === 'QueueMetadata');
        const entry = queueMetadata?.nestedType.find((nested) => nested.name === 'HeadersEntry');
        expect(entry, 'QueueMetadata.HeadersEntry').toBeDefined();
        expect(entry?.options?.mapEntry).toBe(true);
        expect(queueMetadata?.nestedType.map((nested) => nested.name)).not.toContain('Headers');
        const headers = registry
          .getMessage('gateway.v1.QueueMetadata')
          ?.fields.find((field) => field.name === 'headers');
        expect(headers?.fieldKind).toBe('map');

        // Comments survive (source_code_info).
        const comments = (files[0].sourceCodeInfo?.location ?? [])
          .map((location) => location.leadingComments)
          .join('\n');
        expect(comments).toContain('The virtual waiting room in front of a busy event');
        expect(comments).toContain('Puts a user in the waiting room of an event');
      });

      it('answers file_by_filename, and NOT_FOUND in error_response for unknown symbols and files', async () => {
        const client = track(reflectionClient(version, gw().grpc));
        const [byFile, unknownSymbol, unknownFile] = await reflect(client, [
          {file_by_filename: 'proto/gateway/v1/queue.proto'},
          {file_containing_symbol: 'gateway.v1.NoSuchService'},
          {file_by_filename: 'proto/gateway/v1/no_such.proto'},
        ]);
        expect(byFile.error_response).toBeFalsy();
        const files: FileDescriptorProto[] = (byFile.file_descriptor_response.file_descriptor_proto as Buffer[]).map(
          (bytes) => fromBinary(FileDescriptorProtoSchema, bytes),
        );
        expect(files[0].name).toBe('proto/gateway/v1/queue.proto');
        expect(files[0].package).toBe('gateway.v1');
        const byName = new Map(files.map((file) => [file.name, file]));
        expect(() => createFileRegistry(files[0], (name) => byName.get(name))).not.toThrow();

        expect(unknownSymbol.file_descriptor_response).toBeFalsy();
        expect(unknownSymbol.error_response?.error_code).toBe(grpc.status.NOT_FOUND);
        expect(unknownFile.error_response?.error_code).toBe(grpc.status.NOT_FOUND);
      });

      it('serves resolvable descriptors for every service it lists (what `grpcurl describe` needs)', async () => {
        const client = track(reflectionClient(version, gw().grpc));
        const [list] = await reflect(client, [{list_services: ''}]);
        const names = (list.list_services_response.service as Array<{name: string}>).map((service) => service.name);
        const answers = await reflect(
          client,
          names.map((name) => ({file_containing_symbol: name})),
        );
        expect(answers).toHaveLength(names.length);
        answers.forEach((answer, index) => {
          expect(answer.error_response, names[index]).toBeFalsy();
          const files = (answer.file_descriptor_response.file_descriptor_proto as Buffer[]).map((bytes) =>
            fromBinary(FileDescriptorProtoSchema, bytes),
          );
          const registry = strictRegistry(files);
          expect(registry.getService(names[index]), names[index]).toBeDefined();
        });
      });
    });
  }
});

describe('auth interceptor', () => {
  const createReservation = async (metadata?: grpc.Metadata, target: () => TestGateway = gw) => {
    const client = track(await contractClient('gateway.v1.GatewayService', target().grpc));
    return callWithMetadata(
      client,
      'CreateReservation',
      {event_id: 'evt_auth', seat_ids: ['A-1'], quantity: 1},
      metadata,
    );
  };

  it('refuses a method that needs auth without a token, with details carrying common.v1.Error UNAUTHENTICATED', async () => {
    const {error} = await createReservation();
    expect(error?.code).toBe(grpc.status.UNAUTHENTICATED);
    const {status, details} = await statusDetails(error);
    expect(status.code).toBe(grpc.status.UNAUTHENTICATED);
    const contractError = details.find((detail) => detail.$typeName === 'common.v1.Error');
    expect(contractError, 'common.v1.Error among the details').toBeDefined();
    expect(contractError!.code).toBe(await errorCodeNumber('ERROR_CODE_UNAUTHENTICATED'));
  });

  it('refuses garbage, wrong-secret, expired, never-expiring, too long-lived and wrong-audience tokens', async () => {
    const now = Math.floor(Date.now() / 1000);
    const cases: Array<[string, grpc.Metadata]> = [
      ['garbage', bearer('not-a-jwt')],
      ['three garbage segments', bearer('aaa.bbb.ccc')],
      [
        'not a bearer scheme',
        (() => {
          const metadata = new grpc.Metadata();
          metadata.set('authorization', `Basic ${Buffer.from('user:pass').toString('base64')}`);
          return metadata;
        })(),
      ],
      ['wrong secret', bearer(await hs256('some-other-secret-0123456789abcdef012345', {sub: 'user-1'}))],
      ['expired', bearer(await hs256(JWT_SECRET, {sub: 'user-1', iat: now - 3600, exp: now - 600}))],
      ['without exp', bearer(await hs256(JWT_SECRET, {sub: 'user-1', exp: null}))],
      ['living 100000 h', bearer(await hs256(JWT_SECRET, {sub: 'user-1', iat: now, exp: now + 100_000 * 3600}))],
      ['wrong audience', bearer(await hs256(JWT_SECRET, {sub: 'user-1', aud: 'someone-else'}))],
      [
        'unsigned (alg none)',
        bearer(
          `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({sub: 'user-1', iss: JWT_ISSUER, aud: JWT_AUDIENCE, exp: now + 300})).toString('base64url')}.`,
        ),
      ],
    ];
    for (const [name, metadata] of cases) {
      const {error, response} = await createReservation(metadata);
      expect(response, name).toBeUndefined();
      expect(error?.code, name).toBe(grpc.status.UNAUTHENTICATED);
      const {details} = await statusDetails(error);
      expect(details.find((detail) => detail.$typeName === 'common.v1.Error')?.code, name).toBe(
        await errorCodeNumber('ERROR_CODE_UNAUTHENTICATED'),
      );
    }
  });

  it('lets a valid HS256 token through to the handler (which then wants event_id)', async () => {
    const {error} = await createReservation(bearer(await hs256(JWT_SECRET, {sub: 'user-1'})));
    expect(error?.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it('accepts the development bypass token in development only', async () => {
    const development = await createReservation(bearer(DEV_TOKEN));
    expect(development.error?.code).toBe(grpc.status.INVALID_ARGUMENT);

    production = await startTestGateway({
      REDIS_ADDRESS: redis!.address,
      SERVER_ENVIRONMENT: 'production',
      DEV_BYPASS_TOKEN: DEV_TOKEN,
      JWT_SECRET,
      JWT_ISSUER,
      JWT_AUDIENCE,
    });
    await waitForReady(production);
    const prod = () => production as TestGateway;
    const refused = await createReservation(bearer(DEV_TOKEN), prod);
    expect(refused.error?.code).toBe(grpc.status.UNAUTHENTICATED);
    // A real token still works there, so the refusal above is about the bypass token.
    const real = await createReservation(bearer(await hs256(JWT_SECRET, {sub: 'user-1'})), prod);
    expect(real.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    await production.close();
    await production.close();
    production = undefined;
  });

  it('serves queue methods without a token', async () => {
    const queue = track(await contractClient('gateway.v1.QueueService', gw().grpc));
    const joined = await unaryCall(queue, 'JoinQueue', {event_id: 'evt_public'});
    expect(joined.waiting_token).toMatch(/\S/);
    const status = await unaryCall(queue, 'GetQueueStatus', {waiting_token: joined.waiting_token});
    expect(status.position).toBe(joined.position_hint);
    const stats = await unaryCall(queue, 'GetQueueStats', {event_id: 'evt_public'});
    expect(stats.events[0].total_waiting).toBe(1);
    const left = await unaryCall(queue, 'LeaveQueue', {waiting_token: joined.waiting_token});
    expect(left.success).toBe(true);
  });

  it('serves GatewayService.HealthCheck without a token (a response with a map field)', async () => {
    const gateway = track(await contractClient('gateway.v1.GatewayService', gw().grpc));
    const {response, error} = await callWithMetadata(gateway, 'HealthCheck', {});
    expect(error?.message).toBeUndefined();
    expect(response?.status).toBe('HEALTH_STATUS_HEALTHY');
  });

  it('serves GatewayService.ValidateToken without a token: valid for a good JWT, invalid for a bad one', async () => {
    const gateway = track(await contractClient('gateway.v1.GatewayService', gw().grpc));
    const bad = await callWithMetadata(gateway, 'ValidateToken', {token: 'not-a-jwt'});
    expect(bad.error?.message).toBeUndefined();
    expect(bad.response?.valid).toBe(false);
    const good = await callWithMetadata(gateway, 'ValidateToken', {token: await hs256(JWT_SECRET, {sub: 'user-42'})});
    expect(good.error?.message).toBeUndefined();
    expect(good.response?.valid).toBe(true);
    expect(good.response?.user?.user_id).toBe('user-42');
  });
});

describe('observe interceptor: metrics, logs, request ids', () => {
  it('counts calls by service, method and code, and records handling time', async () => {
    const queue = track(await contractClient('gateway.v1.QueueService', gw().grpc));
    const gatewayClient = track(await contractClient('gateway.v1.GatewayService', gw().grpc));
    const before = await metrics(gw());
    const joinOk = {grpc_service: 'gateway.v1.QueueService', grpc_method: 'JoinQueue', grpc_code: 'OK'};
    const unauth = {
      grpc_service: 'gateway.v1.GatewayService',
      grpc_method: 'CreateReservation',
      grpc_code: 'Unauthenticated',
    };
    const invalid = {grpc_service: 'gateway.v1.QueueService', grpc_method: 'JoinQueue', grpc_code: 'InvalidArgument'};
    for (let index = 0; index < 3; index += 1) await unaryCall(queue, 'JoinQueue', {event_id: 'evt_metrics'});
    for (let index = 0; index < 2; index += 1)
      expect((await callWithMetadata(gatewayClient, 'CreateReservation', {})).error?.code).toBe(
        grpc.status.UNAUTHENTICATED,
      );
    expect((await callWithMetadata(queue, 'JoinQueue', {event_id: ''})).error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    const after = await metrics(gw());

    expect(
      sampleValue(after, 'grpc_server_handled_total', joinOk) -
        sampleValue(before, 'grpc_server_handled_total', joinOk),
    ).toBe(3);
    expect(
      sampleValue(after, 'grpc_server_handled_total', unauth) -
        sampleValue(before, 'grpc_server_handled_total', unauth),
    ).toBe(2);
    expect(
      sampleValue(after, 'grpc_server_handled_total', invalid) -
        sampleValue(before, 'grpc_server_handled_total', invalid),
    ).toBe(1);
    expect(
      after.find((sample) => sample.name === 'grpc_server_handled_total' && sample.labels.grpc_method === 'JoinQueue')
        ?.labels.grpc_type,
    ).toBe('unary');

    const started = {grpc_service: 'gateway.v1.QueueService', grpc_method: 'JoinQueue'};
    expect(
      sampleValue(after, 'grpc_server_started_total', started) -
        sampleValue(before, 'grpc_server_started_total', started),
    ).toBe(4);
    const buckets = after.filter(
      (sample) => sample.name === 'grpc_server_handling_seconds_bucket' && sample.labels.grpc_method === 'JoinQueue',
    );
    expect(buckets.length).toBeGreaterThan(1);
    const infBucket = sampleValue(after, 'grpc_server_handling_seconds_bucket', {...started, le: '+Inf'});
    expect(infBucket).toBe(sampleValue(after, 'grpc_server_handling_seconds_count', started));
    expect(infBucket - sampleValue(before, 'grpc_server_handling_seconds_bucket', {...started, le: '+Inf'})).toBe(4);
  });

  it("writes one 'grpc call' log line per call with req_id, method and code", async () => {
    const queue = track(await contractClient('gateway.v1.QueueService', gw().grpc));
    const gatewayClient = track(await contractClient('gateway.v1.GatewayService', gw().grpc));
    const run = `log-${Date.now()}`;
    const calls: Array<{id: string; method: string; code: string; outcome: Promise<CallOutcome>}> = [];
    for (let index = 0; index < 3; index += 1) {
      const id = `${run}-join-${index}`;
      calls.push({
        id,
        method: '/gateway.v1.QueueService/JoinQueue',
        code: 'OK',
        outcome: callWithMetadata(queue, 'JoinQueue', {event_id: 'evt_logs'}, withRequestId(id)),
      });
    }
    calls.push({
      id: `${run}-invalid`,
      method: '/gateway.v1.QueueService/JoinQueue',
      code: 'InvalidArgument',
      outcome: callWithMetadata(queue, 'JoinQueue', {event_id: 'has spaces'}, withRequestId(`${run}-invalid`)),
    });
    calls.push({
      id: `${run}-unauth`,
      method: '/gateway.v1.GatewayService/CreateReservation',
      code: 'Unauthenticated',
      outcome: callWithMetadata(gatewayClient, 'CreateReservation', {}, withRequestId(`${run}-unauth`)),
    });
    await Promise.all(calls.map((call) => call.outcome));
    for (const call of calls) {
      const lines = gw().logs.filter((line) => line.msg === 'grpc call' && line.req_id === call.id);
      expect(lines, call.id).toHaveLength(1);
      expect(lines[0].method, call.id).toBe(call.method);
      expect(lines[0].code, call.id).toBe(call.code);
    }
    // Calls without a request id get a generated one in their log line.
    const before = gw().logs.length;
    await unaryCall(queue, 'GetQueueStats', {event_id: 'evt_logs'});
    const line = gw()
      .logs.slice(before)
      .find((entry) => entry.msg === 'grpc call' && entry.method === '/gateway.v1.QueueService/GetQueueStats');
    expect(line?.req_id).toMatch(/^[A-Za-z0-9._:-]{8,128}$/);
  });

  it('echoes x-request-id in response headers, or in trailers for trailers-only errors', async () => {
    const queue = track(await contractClient('gateway.v1.QueueService', gw().grpc));
    const gatewayClient = track(await contractClient('gateway.v1.GatewayService', gw().grpc));
    const echoed = (outcome: CallOutcome) => [
      outcome.headers?.get('x-request-id')[0],
      outcome.trailers?.get('x-request-id')[0],
    ];

    const ok = await callWithMetadata(queue, 'JoinQueue', {event_id: 'evt_echo'}, withRequestId('echo-ok-1'));
    expect(ok.error).toBeUndefined();
    expect(ok.headers?.get('x-request-id')[0]).toBe('echo-ok-1');

    const invalid = await callWithMetadata(queue, 'JoinQueue', {event_id: ''}, withRequestId('echo-invalid-1'));
    expect(invalid.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect.soft(echoed(invalid), 'handler error (INVALID_ARGUMENT)').toContain('echo-invalid-1');

    const unauth = await callWithMetadata(gatewayClient, 'CreateReservation', {}, withRequestId('echo-unauth-1'));
    expect(unauth.error?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect.soft(echoed(unauth), 'auth refusal (UNAUTHENTICATED)').toContain('echo-unauth-1');
    // The details carry the same id (common.v1.Error.trace_id, google.rpc.RequestInfo).
    const {details} = await statusDetails(unauth.error);
    expect(details.find((detail) => detail.$typeName === 'common.v1.Error')?.traceId).toBe('echo-unauth-1');
    expect(details.find((detail) => detail.$typeName === 'google.rpc.RequestInfo')?.requestId).toBe('echo-unauth-1');

    // A hostile id is replaced, not echoed.
    const hostile = 'has spaces and "quotes" <script>';
    const replaced = await callWithMetadata(queue, 'JoinQueue', {event_id: 'evt_echo'}, withRequestId(hostile));
    expect(replaced.error).toBeUndefined();
    const id = replaced.headers?.get('x-request-id')[0];
    expect(id).not.toBe(hostile);
    expect(id).toMatch(/^[A-Za-z0-9._:-]{8,128}$/);
  });
});

describe('REST and gRPC share one queue service', () => {
  it('join over REST, status over gRPC (and back) give the same positions', async () => {
    const queue = track(await contractClient('gateway.v1.QueueService', gw().grpc));
    const event = `evt_shared_${Date.now()}`;
    const rest: string[] = [];
    for (let index = 0; index < 3; index += 1) {
      const joined = await postJson(`${gw().http}/api/v1/queue/join`, {event_id: event, user_id: `rest-${index}`});
      expect(joined.status).toBe(202);
      expect(joined.body.position_hint).toBe(index + 1);
      rest.push(joined.body.waiting_token);
    }
    for (let index = 0; index < 3; index += 1) {
      const overGrpc = await unaryCall(queue, 'GetQueueStatus', {waiting_token: rest[index]});
      const overRest = await getJson(`${gw().http}/api/v1/queue/status?token=${encodeURIComponent(rest[index])}`);
      expect(overGrpc.position).toBe(index + 1);
      expect(overRest.body.position).toBe(index + 1);
    }

    const viaGrpc = await unaryCall(queue, 'JoinQueue', {event_id: event, user_id: 'grpc-0'});
    expect(viaGrpc.position_hint).toBe(4);
    const restStatus = await getJson(
      `${gw().http}/api/v1/queue/status?token=${encodeURIComponent(viaGrpc.waiting_token)}`,
    );
    expect(restStatus.status).toBe(200);
    expect(restStatus.body.position).toBe(4);

    // Someone ahead leaves over REST: the gRPC view moves up at once.
    const left = await fetch(`${gw().http}/api/v1/queue/leave?token=${encodeURIComponent(rest[0])}`, {
      method: 'DELETE',
    });
    expect(left.status).toBe(200);
    expect((await unaryCall(queue, 'GetQueueStatus', {waiting_token: viaGrpc.waiting_token})).position).toBe(3);
    expect((await unaryCall(queue, 'GetQueueStatus', {waiting_token: rest[0]})).status).toBe('QUEUE_STATUS_LEFT');

    const stats = await getJson(`${gw().http}/api/v1/queue/stats?event_id=${event}`);
    const grpcStats = await unaryCall(queue, 'GetQueueStats', {event_id: event});
    expect(stats.body.events[0].total_waiting).toBe(3);
    expect(grpcStats.events[0].total_waiting).toBe(3);
  });
});

describe('INVALID_ARGUMENT over gRPC', () => {
  const cases: Array<[string, string, Record<string, unknown>, string]> = [
    ['empty event_id', 'JoinQueue', {event_id: ''}, 'event_id'],
    ['event_id with spaces', 'JoinQueue', {event_id: 'evt 1'}, 'event_id'],
    ['event_id with a brace', 'JoinQueue', {event_id: 'evt}{x'}, 'event_id'],
    ['event_id of 129 characters', 'JoinQueue', {event_id: 'e'.repeat(129)}, 'event_id'],
    ['empty waiting_token', 'GetQueueStatus', {waiting_token: ''}, 'waiting_token'],
  ];
  it.each(cases)('%s: INVALID_ARGUMENT with a BadRequest field violation', async (_name, method, request, field) => {
    const queue = track(await contractClient('gateway.v1.QueueService', gw().grpc));
    const {error} = await callWithMetadata(queue, method, request);
    expect(error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    const {status, details} = await statusDetails(error);
    expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
    const badRequest = details.find((detail) => detail.$typeName === 'google.rpc.BadRequest');
    expect(badRequest, 'google.rpc.BadRequest among the details').toBeDefined();
    expect((badRequest!.fieldViolations as Array<{field: string}>).map((violation) => violation.field)).toContain(
      field,
    );
    expect(details.find((detail) => detail.$typeName === 'common.v1.Error')?.code).toBe(
      await errorCodeNumber('ERROR_CODE_INVALID_ARGUMENT'),
    );
  });

  it('an unknown waiting token is NOT_FOUND, not INTERNAL', async () => {
    const queue = track(await contractClient('gateway.v1.QueueService', gw().grpc));
    for (const token of ['garbage', `${Buffer.from('evt_x').toString('base64url')}.${'A'.repeat(22)}`]) {
      const {error} = await callWithMetadata(queue, 'GetQueueStatus', {waiting_token: token});
      expect(error?.code, token).toBe(grpc.status.NOT_FOUND);
    }
  });
});

describe('grpc.health.v1 follows Redis', () => {
  it('is SERVING overall and per service, NOT_FOUND for unknown services', async () => {
    const health = track(healthClient(gw().grpc));
    for (const service of ['', 'gateway.v1.QueueService', 'gateway.v1.WebSocketService']) {
      expect((await unaryCall(health, 'Check', {service})).status, service || '(overall)').toBe('SERVING');
    }
    await expect(unaryCall(health, 'Check', {service: 'no.such.Service'})).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
    });
  });

  it('says NOT_SERVING within seconds of Redis stopping, UNAVAILABLE on queue calls, and SERVING again after restart', async () => {
    const health = track(healthClient(gw().grpc));
    const queue = track(await contractClient('gateway.v1.QueueService', gw().grpc));
    const check = (service: string) => unaryCall(health, 'Check', {service}).then((answer) => answer.status as string);
    try {
      await redis!.stop();
      const down = await until(
        'overall NOT_SERVING',
        3000,
        () => check(''),
        (status) => status === 'NOT_SERVING',
      );
      expect(down.ms).toBeLessThan(3000);
      expect(await check('gateway.v1.QueueService')).toBe('NOT_SERVING');

      const started = performance.now();
      const {error} = await callWithMetadata(queue, 'JoinQueue', {event_id: 'evt_down'});
      const elapsed = performance.now() - started;
      expect(error?.code).toBe(grpc.status.UNAVAILABLE);
      expect(elapsed).toBeLessThan(1500);
      const {details} = await statusDetails(error);
      expect(details.find((detail) => detail.$typeName === 'common.v1.Error')?.code).toBe(
        await errorCodeNumber('ERROR_CODE_UNAVAILABLE'),
      );
    } finally {
      await redis!.restart();
    }
    await until(
      'overall SERVING',
      8000,
      () => check(''),
      (status) => status === 'SERVING',
    );
    await until(
      'QueueService SERVING',
      2000,
      () => check('gateway.v1.QueueService'),
      (status) => status === 'SERVING',
    );
    const joined = await unaryCall(queue, 'JoinQueue', {event_id: 'evt_back'});
    expect(joined.position_hint).toBe(1);
  });
});
