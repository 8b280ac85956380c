/**
 * Cross-language strict client: Python grpcio does a raw reflection exchange (v1alpha, as Evans and
 * grpc_cli speak, and v1) and loads every descriptor it receives into a protobuf DescriptorPool,
 * which refuses unresolvable imports and references (the defect of proto-loader-synthesized
 * descriptors, grpc-node#2595). Skipped, with the reason printed, when /usr/bin/python3 has no grpc
 * (Debian: apt-get install -y python3-grpcio python3-protobuf).
 */
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {execa, execaSync} from 'execa';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {startTestGateway, waitForReady, type TestGateway} from '../helpers/gateway.js';
import {disposeRedis, startRedis, type RedisProcess} from '../helpers/redis.js';
import {ALL_CHECKS_REQUIRED, missingToolError} from '../helpers/required-checks.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'reflection_client.py');

const probe = execaSync(PYTHON, ['-c', 'import grpc, google.protobuf'], {timeout: 15_000, reject: false});
const pythonHasGrpc = probe.exitCode === 0;
if (!pythonHasGrpc && ALL_CHECKS_REQUIRED)
  throw missingToolError(
    `${PYTHON} cannot import grpc and google.protobuf (apt-get install python3-grpcio python3-protobuf)`,
  );
if (!pythonHasGrpc) {
  const why = probe.exitCode === undefined ? probe.shortMessage : probe.stderr.trim().split('\n').pop();
  console.warn(
    `[interop] skipping the Python reflection client: ${PYTHON} cannot import grpc and google.protobuf (${why}). ` +
      'On Debian: apt-get install -y python3-grpcio python3-protobuf',
  );
}

interface VersionReport {
  version: string;
  ok: boolean;
  error?: string;
  services?: string[];
  files?: string[];
  join_queue_response?: {file: string; expires_at_type: string; error_type: string};
  headers_entry?: {name: string; map_entry: boolean};
  queue_file_dependencies?: string[];
  queue_methods?: string[];
  unknown_symbol_error_code?: number;
}

async function runClient(address: string, versions: string[]): Promise<{code: number; stdout: string; stderr: string}> {
  const result = await execa(PYTHON, [SCRIPT, address, ...versions], {
    timeout: 30_000,
    maxBuffer: 4 * 1024 * 1024,
    reject: false,
    stripFinalNewline: false,
  });
  return {code: result.exitCode ?? -1, stdout: result.stdout, stderr: result.stderr};
}

let redis: RedisProcess | undefined;
let gateway: TestGateway | undefined;

beforeAll(async () => {
  if (!pythonHasGrpc) return;
  redis = await startRedis();
  gateway = await startTestGateway({REDIS_ADDRESS: redis.address});
  await waitForReady(gateway);
});

afterAll(async () => {
  await gateway?.close();
  await disposeRedis(redis);
});

describe('Python grpcio reflection client (strict DescriptorPool)', () => {
  it.skipIf(!pythonHasGrpc)('resolves every served descriptor over v1alpha and v1', async () => {
    const {code, stdout, stderr} = await runClient(gateway!.grpc, ['v1alpha', 'v1']);
    let result: {ok: boolean; reports: VersionReport[]} | undefined;
    try {
      result = JSON.parse(stdout);
    } catch {
      result = undefined;
    }
    expect(result, `python printed no JSON (exit ${code}): ${stdout}\n${stderr}`).toBeDefined();
    for (const report of result!.reports) {
      expect(report.error, report.version).toBeUndefined();
      expect(report.ok, report.version).toBe(true);
      expect(report.services).toEqual(
        expect.arrayContaining(['gateway.v1.QueueService', 'gateway.v1.WebSocketService', 'grpc.health.v1.Health']),
      );
      expect(report.files).toEqual(
        expect.arrayContaining(['proto/gateway/v1/queue.proto', 'google/protobuf/timestamp.proto']),
      );
      expect(report.join_queue_response).toEqual({
        file: 'proto/gateway/v1/queue.proto',
        expires_at_type: 'google.protobuf.Timestamp',
        error_type: 'common.v1.Error',
      });
      expect(report.headers_entry).toEqual({name: 'HeadersEntry', map_entry: true});
      expect(report.queue_file_dependencies).toEqual(
        expect.arrayContaining(['google/protobuf/timestamp.proto', 'proto/common/v1/errors.proto']),
      );
      expect(report.queue_methods).toEqual([
        'JoinQueue',
        'GetQueueStatus',
        'RequestAdmission',
        'LeaveQueue',
        'GetQueueStats',
      ]);
      expect(report.unknown_symbol_error_code).toBe(5);
    }
    expect(result!.reports.map((report) => report.version)).toEqual(['v1alpha', 'v1']);
    expect(result!.ok).toBe(true);
    expect(code).toBe(0);
  });
});
