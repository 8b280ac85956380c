import * as Flags from '@oclif/core/flags';
import {TacosCommand} from '../../cli/base-command.js';
import {serveRedis} from '../../services/stack/redis-process.js';

export default class ServeRedis extends TacosCommand {
  static override summary = 'Run redis-server for the stack (used by tacos up).';
  static override description =
    'redis-server on 127.0.0.1 with its own dir and no persistence; stops it on SIGINT/SIGTERM.';
  static override examples = ['<%= config.bin %> serve redis --port 6380 --dir .tacos/redis'];
  static override flags = {
    port: Flags.integer({description: 'Port.', default: 6379, min: 1, max: 65_535}),
    dir: Flags.string({description: 'Working dir of redis-server.', default: '.tacos/redis'}),
  };

  async run(): Promise<void> {
    const {flags} = await this.parse(ServeRedis);
    const code = await serveRedis({port: flags.port, dir: flags.dir});
    if (code !== 0) this.exit(code);
  }
}
