import * as Args from '@oclif/core/args';
import {TacosCommand} from '../cli/base-command.js';
import {connectionFlags, connectionOptions} from '../cli/grpc-flags.js';
import {openTarget} from '../services/grpc-client/run-call.js';
import {listMethods, listServices} from '../services/grpc-client/describe.js';

export default class List extends TacosCommand {
  static override summary = "List a server's services, or a service's methods with their streaming kind.";
  static override examples = [
    '<%= config.bin %> list',
    '<%= config.bin %> list QueueService',
    '<%= config.bin %> list --addr localhost:8011',
  ];
  static override args = {service: Args.string({description: 'A service (full or short name).'})};
  static override flags = connectionFlags;

  async run(): Promise<void> {
    const {args, flags} = await this.parse(List);
    const connected = await openTarget(connectionOptions(flags));
    connected.close();
    const {schema} = connected;
    for (const line of args.service ? listMethods(schema, args.service) : listServices(schema)) this.log(line);
  }
}
