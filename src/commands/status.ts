import * as Flags from '@oclif/core/flags';
import {TacosCommand} from '../cli/base-command.js';
import {stateDir} from '../services/paths.js';
import {readLiveState} from '../services/stack/state.js';
import {probeServices, statusTable} from '../services/stack/status.js';

export default class Status extends TacosCommand {
  static override summary = 'Show the running stack, probing each service.';
  static override description =
    'Each service is probed now (its process, and its HTTP /readyz, gRPC health or Redis PING), not only read from the state. Exit code 0 when every service answers, 1 otherwise (or when no stack runs).';
  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status --json'];
  static override flags = {json: Flags.boolean({description: 'Print JSON.'})};

  async run(): Promise<void> {
    const {flags} = await this.parse(Status);
    const {state, staleRemoved} = await readLiveState(stateDir());
    const services = state ? await probeServices(state) : [];
    const healthy = Boolean(state) && services.every((service) => service.healthy);
    if (flags.json) {
      this.log(
        JSON.stringify(
          {
            running: Boolean(state),
            healthy,
            env: state?.env,
            startedAt: state?.startedAt,
            supervisorPid: state?.supervisor.pid,
            services,
          },
          null,
          2,
        ),
      );
    } else if (state) {
      this.log(statusTable(services, Boolean(process.stdout.isTTY) && !process.env.NO_COLOR));
    } else {
      this.log(
        staleRemoved
          ? 'No stack is running (a stale state from a stack that died was cleaned up).'
          : 'No stack is running.',
      );
    }
    if (!healthy) this.exit(1);
  }
}
