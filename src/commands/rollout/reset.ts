import * as Flags from '@oclif/core/flags';
import {TacosCommand} from '../../cli/base-command.js';
import {rolloutGatewayFlags, rolloutGateway} from '../../cli/rollout-flags.js';
import {resetRollout, statusText} from '../../services/rollout/status.js';

export default class RolloutReset extends TacosCommand {
  static override summary = "Clear the running gateway's automatic rollback (every worker), then show the status.";
  static override description =
    'Sends POST /api/v1/rollout/reset with a token of scope rollout:admin signed with the JWT_SECRET of the environment.';
  static override examples = ['<%= config.bin %> rollout reset --env staging'];
  static override flags = {
    ...rolloutGatewayFlags,
    json: Flags.boolean({description: "Print the gateway's status JSON."}),
  };

  async run(): Promise<void> {
    const {flags} = await this.parse(RolloutReset);
    const gateway = await rolloutGateway(flags);
    const status = await resetRollout(gateway, flags.env);
    this.log(flags.json ? JSON.stringify(status, null, 2) : statusText(status));
  }
}
