import {TacosCommand} from '../../cli/base-command.js';
import {envFlag} from '../../cli/flags.js';
import {serveGateway} from '../../services/gateway/serve.js';

export default class ServeGateway extends TacosCommand {
  static override summary = 'Run the gateway in the foreground.';
  static override description =
    'REST on SERVER_PORT (8000) and, with GRPC_ENABLED=true, gRPC on GRPC_PORT (9090); the waiting-room queue on Redis at REDIS_ADDRESS. JSON log lines on stdout. SIGINT or SIGTERM stops it cleanly (exit 0).';
  static override examples = ['<%= config.bin %> serve gateway', 'GRPC_ENABLED=true <%= config.bin %> serve gateway --env dev'];
  static override flags = {env: envFlag};

  async run(): Promise<void> {
    const {flags} = await this.parse(ServeGateway);
    await serveGateway({envName: flags.env});
  }
}
