import {TacosCommand} from '../cli/base-command.js';
import {connectionFlags, connectionOptions, selectionFlags} from '../cli/grpc-flags.js';
import {runRepl} from '../services/repl/repl.js';

export default class Repl extends TacosCommand {
  static override summary =
    "Evans's gRPC REPL: pick a package and service, then call, describe and show by short names.";
  static override description = `Commands (help lists them): package NAME, service NAME, call METHOD [--enrich] [--repeat] [--emit-defaults] [-d JSON|-d @FILE] [--example FILE [--force]], desc SYMBOL, show package|service|message|rpc|header, header KEY=VALUE ... / header -r KEY, reflect, history, export [--grpcurl], exit.

The prompt shows where you are: package.Service@address. Tab completes commands, packages, services, methods, messages and header keys. Ctrl-C clears the line, or cancels the call in flight (a stream stops); Ctrl-D or exit leaves (exit code 0). Lines typed (but those setting a secret header) and requests made are kept in .tacos/repl/ across runs. export never prints secrets: an authorization header becomes "authorization: Bearer $TACOS_TOKEN" (other secret headers $TACOS_<KEY>), to be set in the shell.

Exit codes: 0 on exit; 1 when the target cannot be reached or has no reflection; 2 for bad flags (an unknown --package or --service).`;
  static override examples = [
    '<%= config.bin %> repl',
    '<%= config.bin %> repl --package gateway.v1 --service QueueService --token "$(<%= config.bin %> token)"',
    '<%= config.bin %> repl --addr localhost:50051 --proto helloworld.proto',
  ];
  static override flags = {
    ...connectionFlags,
    ...selectionFlags,
  };

  async run(): Promise<void> {
    const {flags} = await this.parse(Repl);
    const code = await runRepl(
      {connection: connectionOptions(flags), package: flags.package, service: flags.service},
      {
        input: process.stdin,
        output: process.stdout,
        error: process.stderr,
        // Inquirer loads only when there is something to ask.
        prompter: async () => (await import('../services/grpc-client/prompts.js')).createPrompter(),
      },
    );
    if (code !== 0) this.exit(code);
  }
}
