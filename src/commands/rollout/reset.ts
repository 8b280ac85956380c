import * as Flags from '@oclif/core/flags';
import {TacosCommand} from '../../cli/base-command.js';
import {envFlag} from '../../cli/flags.js';
import {stateDir} from '../../services/paths.js';
import {readLiveState} from '../../services/stack/state.js';
import {requireGateway} from '../../services/rollout/gateway-status.js';
import {resetRollout, statusText} from '../../services/rollout/status.js';

export default class RolloutReset extends TacosCommand {
  static override summary = "Clear the running gateway's automatic rollback (every worker), then show the status.";
  static override description =
    'Sends POST /api/v1/rollout/reset with a token of scope rollout:admin signed with the JWT_SECRET of the environment.';
  static override examples = ['<%= config.bin %> rollout reset --env staging'];
  static override flags = {
    env: envFlag,
    url: Flags.string({
      description: 'The gateway (default: the gateway of the stack running here for --env).',
      helpValue: 'URL',
    }),
    json: Flags.boolean({description: "Print the gateway's status JSON."}),
  };

  async run(): Promise<void> {
    const {flags} = await this.parse(RolloutReset);
    const gateway = requireGateway({
      url: flags.url,
      envName: flags.env,
      stack: flags.url ? undefined : (await readLiveState(stateDir())).state,
    });
    const status = await resetRollout(gateway, flags.env);
    this.log(flags.json ? JSON.stringify(status, null, 2) : statusText(status));
  }
}
