import cluster from 'node:cluster';
import {DEFAULT_ENV_NAME, EnvReader, loadEnvironment} from '../config.js';
import {createLogger} from '../logging.js';
import {waitForStopSignal} from '../signals.js';
import {MAX_WORKERS, runGatewayPrimary, runGatewayWorker} from './cluster.js';
import {readGatewayConfig} from './config.js';
import {startGateway, stopGateway} from './gateway.js';
import {LiveSettings, ignoreHangups, type EnvSource} from './rollout/live-settings.js';

/**
 * Runs the gateway until SIGINT or SIGTERM, then stops taking new work, finishes what is in flight,
 * closes Redis and returns. With more than one worker (`workers`, else GATEWAY_WORKERS), this
 * process is the node:cluster primary and the gateways run in its workers, which re-run this
 * command. The live settings (GRPC_ENABLED, GRPC_TRAFFIC_PERCENT, ROLLOUT_*) are applied again when
 * the env file changes or on SIGHUP: the primary of a cluster tells its workers.
 */
export async function serveGateway(options: {envName?: string; workers?: number}): Promise<void> {
  // SIGHUP means "reload" here, never "stop" (node's default).
  ignoreHangups();
  const source: EnvSource = {
    projectDir: process.cwd(),
    envName: options.envName ?? DEFAULT_ENV_NAME,
    named: options.envName !== undefined,
    processEnv: process.env,
  };
  const env = loadEnvironment({envName: options.envName});
  const config = readGatewayConfig(env);
  const workers = options.workers ?? new EnvReader(env).int('GATEWAY_WORKERS', 1, 1, MAX_WORKERS);
  const logger = createLogger('gateway', config.logLevel);
  // Each worker's lines carry its pid: which process served what.
  if (cluster.isWorker) {
    const workerLogger = logger.child({pid: process.pid});
    return runGatewayWorker(config, workerLogger, LiveSettings.started(source, env, workerLogger));
  }
  if (workers > 1) return runGatewayPrimary(config, logger, workers, source);
  const live = LiveSettings.started(source, env, logger);
  const gateway = await startGateway(config, logger, live);
  const stopWatching = live.watch();
  try {
    await stopGateway(gateway, logger, await waitForStopSignal());
  } finally {
    stopWatching();
  }
}
