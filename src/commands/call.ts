import {text} from 'node:stream/consumers';
import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import {TacosCommand} from '../cli/base-command.js';
import {connectionFlags, connectionOptions, selectionFlags} from '../cli/grpc-flags.js';
import {durationFlag} from '../cli/flags.js';
import {usageError} from '../services/errors.js';
import {findMethod} from '../services/grpc-client/invoke.js';
import {openTarget, runCall} from '../services/grpc-client/run-call.js';
import {methodNameIn} from '../services/repl/scope.js';

export default class Call extends TacosCommand {
  static override summary = 'Call a gRPC method through server reflection (or --proto files).';
  static override description = `Names: QueueService.JoinQueue, gateway.v1.QueueService.JoinQueue, gateway.v1.QueueService/JoinQueue, or a unique JoinQueue. Request: -d JSON, -d @file, -d @- (stdin); several JSON objects one after another for client and bidi streams. Without -d on a terminal, prompts field by field (and for the method, when none is named). Responses print as proto3 JSON as they arrive.

Exit codes: 0 OK; 64 + the gRPC status code for a gRPC error (e.g. 69 NOT_FOUND, 80 UNAUTHENTICATED); 2 usage (unknown method, bad flags or data); 1 anything else (cannot connect, no reflection).`;
  static override examples = [
    `<%= config.bin %> call QueueService.JoinQueue -d '{"event_id":"evt_2026_concert"}'`,
    '<%= config.bin %> call gateway.v1.WebSocketService/StreamQueueUpdates -d @request.json',
    '<%= config.bin %> call GetReservation --token "$(<%= config.bin %> token)" -d \'{"reservation_id":"rsv_1"}\'',
    '<%= config.bin %> call CreatePaymentIntent --example > intent.json',
    '<%= config.bin %> call --package gateway.v1 --service QueueService JoinQueue -d \'{"event_id":"evt_2026_concert"}\'',
    '<%= config.bin %> call --addr localhost:50051 --plaintext helloworld.Greeter.SayHello -d \'{"name":"x"}\' -v',
    '<%= config.bin %> call   # on a terminal: choose the service, the method, then fill the request',
  ];
  static override args = {method: Args.string({description: 'The method to call.'})};
  static override flags = {
    ...connectionFlags,
    ...selectionFlags,
    data: Flags.string({char: 'd', description: 'Request: JSON, @file, or @- for stdin.'}),
    timeout: durationFlag({description: 'Deadline of the call (e.g. 2s).'}),
    'emit-defaults': Flags.boolean({description: 'Print fields that have their default value too.'}),
    'proto-names': Flags.boolean({
      description: 'Print the .proto field names (event_id) instead of JSON names (eventId).',
    }),
    verbose: Flags.boolean({char: 'v', description: 'Print response headers and trailers.'}),
    json: Flags.boolean({description: 'Print one JSON object: status, headers, messages, trailers.'}),
    example: Flags.boolean({
      description: "Print a JSON skeleton of the method's request (every field) instead of calling it.",
    }),
  };

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Call);
    const options = connectionOptions(flags);
    const method = args.method && methodNameIn(flags, args.method);
    if (flags.example) {
      if (!method) throw usageError('--example needs the method.', 'tacos call QueueService.JoinQueue --example');
      const connected = await openTarget(options);
      try {
        const {exampleRequest} = await import('../services/grpc-client/describe.js');
        const {json, notes} = exampleRequest(findMethod(connected.schema, method).input);
        this.log(JSON.stringify(json, null, 2));
        for (const note of notes) process.stderr.write(`// ${note}\n`);
      } finally {
        connected.close();
      }
      return;
    }
    const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);
    const code = await runCall(
      {
        ...options,
        method,
        data: flags.data,
        timeoutMs: flags.timeout,
        emitDefaults: flags['emit-defaults'],
        protoNames: flags['proto-names'],
        verbose: flags.verbose,
        json: flags.json,
      },
      {
        out: (chunk) => process.stdout.write(chunk),
        err: (chunk) => process.stderr.write(chunk),
        readStdin: () => (process.stdin.isTTY ? Promise.resolve('') : text(process.stdin)),
        interactive,
      },
      // Inquirer loads only when there is something to ask.
      async () => (await import('../services/grpc-client/prompts.js')).createPrompter(),
    );
    if (code !== 0) this.exit(code);
  }
}
