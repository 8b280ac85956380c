import * as Flags from '@oclif/core/flags';
import {TacosCommand} from '../../cli/base-command.js';
import {runWatched} from '../../services/stack/watched-command.js';

export default class ServeCommand extends TacosCommand {
  static override hidden = true;
  static override summary = 'Run a shell command as a service of the stack (used by tacos up --gateway-cmd).';
  static override flags = {run: Flags.string({description: 'The shell command.', required: true})};

  async run(): Promise<void> {
    const {flags} = await this.parse(ServeCommand);
    const code = await runWatched(flags.run);
    if (code !== 0) this.exit(code);
  }
}
