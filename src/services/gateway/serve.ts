import cluster from 'node:cluster';
import {EnvReader, loadEnvironment} from '../config.js';
import {createLogger} from '../logging.js';
import {waitForStopSignal} from '../signals.js';
import {MAX_WORKERS, runGatewayPrimary, runGatewayWorker} from './cluster.js';
import {readGatewayConfig} from './config.js';
import {startGateway, stopGateway} from './gateway.js';

/**
 * Runs the gateway until SIGINT or SIGTERM, then stops taking new work, finishes what is in flight,
 * closes Redis and returns. With more than one worker (`workers`, else GATEWAY_WORKERS), this
 * process is the node:cluster primary and the gateways run in its workers, which re-run this
 * command.
 */
export async function serveGateway(options: {envName?: string; workers?: number}): Promise<void> {
  const env = loadEnvironment({envName: options.envName});
  const config = readGatewayConfig(env);
  const workers = options.workers ?? new EnvReader(env).int('GATEWAY_WORKERS', 1, 1, MAX_WORKERS);
  const logger = createLogger('gateway', config.logLevel);
  // Each worker's lines carry its pid: which process served what.
  if (cluster.isWorker) return runGatewayWorker(config, logger.child({pid: process.pid}));
  if (workers > 1) return runGatewayPrimary(config, logger, workers);
  const gateway = await startGateway(config, logger);
  await stopGateway(gateway, logger, await waitForStopSignal());
}
