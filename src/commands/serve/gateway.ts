import * as Flags from '@oclif/core/flags';
import {TacosCommand} from '../../cli/base-command.js';
import {envFlag} from '../../cli/flags.js';
import {MAX_WORKERS, parseWorkerCount} from '../../services/gateway/cluster.js';
import {serveGateway} from '../../services/gateway/serve.js';

export default class ServeGateway extends TacosCommand {
  static override summary = 'Run the gateway in the foreground.';
  static override description =
    'REST on SERVER_PORT (8000) and, with GRPC_ENABLED=true, gRPC on GRPC_PORT (9090); the waiting-room queue on Redis at REDIS_ADDRESS. JSON log lines on stdout. SIGINT or SIGTERM stops it cleanly (exit 0). With --workers N (or GATEWAY_WORKERS) above 1, N processes (node:cluster) share the ports.';
  static override examples = [
    '<%= config.bin %> serve gateway',
    'GRPC_ENABLED=true <%= config.bin %> serve gateway --env dev',
    '<%= config.bin %> serve gateway --workers 2',
  ];
  static override flags = {
    env: envFlag,
    workers: Flags.custom<number>({
      description: `Gateway processes sharing the ports, 1 to ${MAX_WORKERS} (default: GATEWAY_WORKERS, else 1).`,
      helpValue: 'N',
      parse: async (input) => parseWorkerCount(input),
    })(),
  };

  async run(): Promise<void> {
    const {flags} = await this.parse(ServeGateway);
    await serveGateway({envName: flags.env, workers: flags.workers});
  }
}
