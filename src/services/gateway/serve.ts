import {loadEnvironment} from '../config.js';
import {createLogger} from '../logging.js';
import {waitForStopSignal} from '../signals.js';
import {readGatewayConfig} from './config.js';
import {startGateway} from './gateway.js';

/**
 * Runs the gateway until SIGINT or SIGTERM, then stops taking new work, finishes what is in flight,
 * closes Redis and returns.
 */
export async function serveGateway(options: {envName?: string}): Promise<void> {
  const config = readGatewayConfig(loadEnvironment({envName: options.envName}));
  const logger = createLogger('gateway', config.logLevel);
  const gateway = await startGateway(config, logger);
  const signal = await waitForStopSignal();
  logger.info({signal}, 'gateway stopping');
  await gateway.close();
  logger.info('gateway stopped');
  logger.flush();
}
