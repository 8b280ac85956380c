import {Writable} from 'node:stream';
import {readGatewayConfig} from '../../src/services/gateway/config.js';
import {startGateway, type RunningGateway} from '../../src/services/gateway/gateway.js';
import {createLogger} from '../../src/services/logging.js';
import {fetchJson} from './http.js';

export interface TestGateway extends RunningGateway {
  http: string;
  grpc: string;
  /** JSON log lines the gateway wrote. */
  logs: Array<Record<string, unknown>>;
}

/** The gateway in this process on 127.0.0.1:0 (HTTP and gRPC), configured like the env files do. */
export async function startTestGateway(env: Record<string, string>): Promise<TestGateway> {
  const config = readGatewayConfig({SERVER_PORT: '0', GRPC_PORT: '0', GRPC_ENABLED: 'true', LOG_LEVEL: 'info', ...env});
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logs.push(JSON.parse(line));
      done();
    },
  });
  const gateway = await startGateway(config, createLogger('gateway', config.logLevel, sink));
  return {
    ...gateway,
    http: `http://127.0.0.1:${gateway.httpPort}`,
    grpc: `127.0.0.1:${gateway.grpcPort}`,
    logs,
  };
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}) {
  const answer = await fetchJson(url, {method: 'POST', body, headers});
  return {status: answer.status, headers: answer.headers, body: answer.json as Record<string, any>};
}

export async function getJson(url: string, options: {method?: string; headers?: Record<string, string>} = {}) {
  const answer = await fetchJson(url, options);
  return {status: answer.status, headers: answer.headers, body: answer.json as Record<string, any>};
}

/** Waits (bounded) until the gateway's /readyz says ready, i.e. its Redis answers. */
export async function waitForReady(gateway: TestGateway, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await fetch(`${gateway.http}/readyz`);
    await response.arrayBuffer();
    if (response.status === 200) return;
    if (Date.now() > deadline)
      throw new Error(
        `the gateway at ${gateway.http} was not ready within ${timeoutMs} ms (last /readyz ${response.status})`,
      );
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
