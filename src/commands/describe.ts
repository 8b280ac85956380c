import * as Args from '@oclif/core/args';
import {TacosCommand} from '../cli/base-command.js';
import {connectionFlags, connectionOptions} from '../cli/grpc-flags.js';
import {openTarget} from '../services/grpc-client/run-call.js';
import {describeSymbol} from '../services/grpc-client/describe.js';

export default class Describe extends TacosCommand {
  static override summary = 'Show a service, method, message or enum as proto source, with its comments.';
  static override examples = [
    '<%= config.bin %> describe gateway.v1.QueueService',
    '<%= config.bin %> describe JoinQueueRequest',
    '<%= config.bin %> describe QueueService.JoinQueue',
  ];
  static override args = {symbol: Args.string({description: 'The symbol (full or short name).', required: true})};
  static override flags = connectionFlags;

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Describe);
    const connected = await openTarget(connectionOptions(flags));
    connected.close();
    this.log(describeSymbol(connected.schema, args.symbol));
  }
}
