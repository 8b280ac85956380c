import {TacosCommand} from '../cli/base-command.js';
import {down} from '../services/stack/down.js';

export default class Down extends TacosCommand {
  static override summary = 'Stop the running stack (from any terminal).';
  static override description =
    'Stops every service in reverse order (SIGTERM, then SIGKILL after 10 s). A Redis the stack reused is left running. Stopping when nothing runs is fine.';
  static override examples = ['<%= config.bin %> down'];

  async run(): Promise<void> {
    await this.parse(Down);
    const stopped = await down();
    this.log(
      stopped ? `Stopped: ${stopped.join(', ') || 'nothing of ours (Redis was reused)'}.` : 'No stack is running.',
    );
  }
}
