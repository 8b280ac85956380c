import * as Flags from '@oclif/core/flags';
import {TacosCommand} from '../../cli/base-command.js';
import {rolloutGatewayFlags, rolloutGateway} from '../../cli/rollout-flags.js';
import {readRolloutStatus} from '../../services/rollout/gateway-status.js';
import {statusText} from '../../services/rollout/status.js';

export default class RolloutStatusCommand extends TacosCommand {
  static override summary =
    "Show the running gateway's gRPC share per backend, rollbacks and the A/B figures of its window.";
  static override examples = [
    '<%= config.bin %> rollout status --env staging',
    '<%= config.bin %> rollout status --url http://127.0.0.1:8000 --json',
  ];
  static override flags = {
    ...rolloutGatewayFlags,
    json: Flags.boolean({description: "Print the gateway's status JSON."}),
  };

  async run(): Promise<void> {
    const {flags} = await this.parse(RolloutStatusCommand);
    const gateway = await rolloutGateway(flags);
    const status = await readRolloutStatus(gateway);
    this.log(flags.json ? JSON.stringify(status, null, 2) : statusText(status));
  }
}
