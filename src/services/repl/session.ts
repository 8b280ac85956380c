import type {DescMethod, JsonValue} from '@bufbuild/protobuf';
import {TacosError, errorMessage, usageError} from '../errors.js';
import {describeSymbol, exampleRequest} from '../grpc-client/describe.js';
import {findMethod, readRequestData} from '../grpc-client/invoke.js';
import {callMethod, type Connected, type Prompter} from '../grpc-client/run-call.js';
import {writeFileAtomically} from '../atomic-file.js';
import {COMMAND_HELP, type CallCommand, type ReplCommand, type ShowWhat} from './commands.js';
import type {CompletionContext} from './completion.js';
import {
  grpcurlCommandLine,
  isSecretHeader,
  secretVariables,
  tacosCommandLine,
  type MadeCall,
  type Reach,
} from './export.js';
import type {HistoryStore} from './history-store.js';
import {
  initialSelection,
  packagesOf,
  resolveMethod,
  scopedNames,
  selectPackage,
  selectService,
  selectedService,
  servicesIn,
  shortName,
  typesIn,
  type Selection,
} from './scope.js';
import {table} from './tables.js';

export interface ReplOutput {
  out(text: string): void;
  err(text: string): void;
}

export interface SessionOptions {
  connected: Connected;
  /** How the target was reached (for export). */
  reach: Reach;
  history: HistoryStore;
  output: ReplOutput;
  /** Field prompts are possible (a terminal); without, `call M` sends an empty request, as `tacos call` does. */
  interactive: boolean;
  prompter: () => Promise<Prompter>;
  /** --package and --service at start. */
  package?: string;
  service?: string;
}

/**
 * What the REPL's commands do: the selected package and service, the headers of every call, the
 * last call (for export), the call in flight (Ctrl-C aborts it). Output goes to `output`; a failed
 * command throws (a TacosError), and the REPL prints it and goes on.
 */
export class ReplSession {
  selection: Selection;
  /** `header k=v`: sent with every call of this session, after the target's -H and --token. */
  readonly headers = new Map<string, string>();
  private lastCall?: MadeCall;
  private inFlight?: AbortController;

  constructor(private readonly options: SessionOptions) {
    this.selection = initialSelection(options.connected.schema, options);
  }

  /** As Evans: `pkg.Service@addr> `, `pkg@addr> `, or `addr> `. */
  prompt(): string {
    const where = this.selection.service ?? this.selection.package;
    return `${where ? `${where}@` : ''}${this.options.connected.target.address}> `;
  }

  completionContext(): CompletionContext {
    return {schema: this.options.connected.schema, selection: this.selection, headerKeys: [...this.headers.keys()]};
  }

  /** Ctrl-C: cancels the call (or reflection) in flight; false when there is none. */
  cancel(): boolean {
    if (!this.inFlight) return false;
    this.inFlight.abort();
    return true;
  }

  /** Runs one command; 'exit' when the REPL should end. */
  async run(command: ReplCommand): Promise<'exit' | undefined> {
    const {connected, output} = this.options;
    const {schema} = connected;
    switch (command.name) {
      case 'none':
        break;
      case 'package':
        this.selection = selectPackage(schema, command.package);
        break;
      case 'service':
        this.selection = selectService(schema, this.selection, command.service);
        break;
      case 'call':
        await this.call(command);
        break;
      case 'desc':
        output.out(`${this.describe(command.symbol)}\n`);
        break;
      case 'show':
        output.out(`${this.show(command.what)}\n`);
        break;
      case 'header':
        // `header` alone shows them.
        if (!command.set.length && !command.remove.length) output.out(`${this.show('header')}\n`);
        for (const key of command.remove) this.headers.delete(key);
        for (const [key, value] of command.set) this.headers.set(key, value);
        break;
      case 'reflect': {
        // A server that does not answer holds reflection until its deadline: Ctrl-C gives the prompt back.
        const {summary} = await this.cancellable((signal) => Promise.race([this.reload(), cancelled(signal)]));
        output.out(`${summary}\n`);
        break;
      }
      case 'history':
        output.out(`${this.historyText()}\n`);
        break;
      case 'export':
        this.export(command.grpcurl);
        break;
      case 'help':
        output.out(
          `${COMMAND_HELP.map(([, usage, summary]) => `  ${usage}\n${wrap(summary, '      ')}`).join('\n')}\n`,
        );
        break;
      case 'exit':
        return 'exit';
    }
    return undefined;
  }

  /**
   * Asks the server for its schema again; the selection stays where it still exists (a package that
   * is gone is unselected, as when starting). The summary says what changed, one line a change.
   */
  async reload(): Promise<{changed: boolean; summary: string}> {
    const result = await this.options.connected.reload();
    const {schema} = this.options.connected;
    const {package: selectedPackage, service} = this.selection;
    if (selectedPackage !== undefined && !packagesOf(schema).includes(selectedPackage))
      this.selection = initialSelection(schema, {});
    else if (service && !selectedService(schema, this.selection)) this.selection = {package: selectedPackage};
    return result;
  }

  private async call(command: CallCommand): Promise<void> {
    const {connected, history, output} = this.options;
    const method = this.callTarget(command);
    const methodName = `${method.parent.typeName}/${method.name}`;
    if (command.example !== undefined) return this.writeExample(method, command.example, command.force);
    let requests: JsonValue[];
    if (command.repeat) {
      const last = history.lastRequestOf(methodName);
      if (!last) throw usageError(`No request of ${methodName} to repeat yet.`, `call ${method.name} first.`);
      requests = last.requests;
    } else if (command.data !== undefined) {
      requests = await readRequestData(command.data, () =>
        Promise.reject(usageError('-d @- (standard input) is for `tacos call`; in the REPL use -d @FILE.')),
      );
    } else if (this.options.interactive) {
      requests = await (await this.options.prompter()).request(method, connected.schema.registry);
    } else {
      requests = [];
    }
    const call: MadeCall = {
      method: methodName,
      requests,
      headers: [...connected.callHeaders, ...this.headers],
      enrich: command.enrich,
      emitDefaults: command.emitDefaults,
    };
    await this.cancellable((signal) =>
      callMethod(
        connected,
        {
          method,
          requests,
          verbose: command.enrich,
          json: false,
          emitDefaults: command.emitDefaults,
          protoNames: false,
          headers: [...this.headers],
          signal,
        },
        output,
      ),
    );
    // Made: it can be exported and repeated (a request that did not encode never got here).
    this.lastCall = call;
    await history.addRequest({method: methodName, requests, at: new Date().toISOString()});
  }

  /** Runs work that Ctrl-C (cancel()) may abort through its signal. */
  private async cancellable<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const abort = new AbortController();
    this.inFlight = abort;
    try {
      return await work(abort.signal);
    } finally {
      this.inFlight = undefined;
    }
  }

  /** The method a call names, or for `call --repeat` alone the method of the last call. */
  private callTarget(command: CallCommand): DescMethod {
    const {schema} = this.options.connected;
    if (command.method) return resolveMethod(schema, this.selection, command.method);
    const last = this.lastCall?.method ?? this.options.history.requests.at(-1)?.method;
    if (!last) throw usageError('No call to repeat yet.', 'call METHOD first.');
    return findMethod(schema, last);
  }

  private async writeExample(method: DescMethod, file: string, force: boolean): Promise<void> {
    const {json, notes} = exampleRequest(method.input);
    try {
      await writeFileAtomically(file, `${JSON.stringify(json, null, 2)}\n`, !force);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST')
        throw usageError(`${file} exists.`, `call ${method.name} --example ${file} --force replaces it.`);
      throw new TacosError(`Cannot write ${file}: ${errorMessage(error)}`);
    }
    const output = this.options.output;
    output.out(`Wrote the request of ${method.parent.typeName}/${method.name} to ${file}.\n`);
    for (const note of notes) output.out(`  ${note}\n`);
    output.out(`Edit it, then: call ${method.name} -d @${file}\n`);
  }

  /** A symbol as `describe` shows it, short names taken in the selected service, then package. */
  private describe(symbol: string): string {
    const {schema} = this.options.connected;
    const names = scopedNames(this.selection, symbol);
    for (const name of names.slice(0, -1)) {
      try {
        return describeSymbol(schema, name);
      } catch {
        // Not in this scope: the next, wider one.
      }
    }
    return describeSymbol(schema, symbol);
  }

  private show(what: ShowWhat): string {
    const {schema, callHeaders} = this.options.connected;
    const name = (typeName: string) => shortName(this.selection, typeName);
    switch (what) {
      case 'package':
        return table(
          ['PACKAGE'],
          packagesOf(schema).map((one) => [one]),
        );
      case 'service':
        return table(
          ['SERVICE', 'RPC', 'REQUEST TYPE', 'RESPONSE TYPE'],
          servicesIn(schema, this.selection).flatMap((service) =>
            service.methods.map((method) => [
              name(service.typeName),
              method.name,
              name(method.input.typeName),
              name(method.output.typeName),
            ]),
          ),
        );
      case 'message':
        return table(
          ['MESSAGE'],
          typesIn(schema, this.selection)
            .filter((desc) => desc.kind === 'message')
            .map((desc) => [name(desc.typeName)]),
        );
      case 'rpc': {
        const service = selectedService(schema, this.selection);
        if (!service) throw usageError('No service selected.', 'service NAME selects one (show service lists them).');
        const streams = (kind: DescMethod['methodKind'], side: 'client' | 'server') =>
          String(kind === 'bidi_streaming' || kind === `${side}_streaming`);
        return table(
          ['RPC', 'REQUEST STREAM', 'RESPONSE STREAM', 'REQUEST MESSAGE', 'RESPONSE MESSAGE'],
          service.methods.map((method) => [
            method.name,
            streams(method.methodKind, 'client'),
            streams(method.methodKind, 'server'),
            name(method.input.typeName),
            name(method.output.typeName),
          ]),
        );
      }
      case 'header':
        return table(
          ['KEY', 'VAL'],
          [...callHeaders, ...this.headers].map(([key, value]) => [key, isSecretHeader(key) ? '(secret)' : value]),
        );
    }
  }

  private historyText(): string {
    const {requests} = this.options.history;
    if (requests.length === 0) return 'No requests yet.';
    const width = String(requests.length).length;
    return requests
      .map(
        (entry, i) =>
          `${String(i + 1).padStart(width)}  ${entry.method} ${entry.requests.map((one) => JSON.stringify(one)).join(' ') || '{}'}`,
      )
      .join('\n');
  }

  private export(grpcurl: boolean): void {
    if (!this.lastCall) throw usageError('No call to export yet.', 'call METHOD first.');
    const {output, reach} = this.options;
    output.out(`${(grpcurl ? grpcurlCommandLine : tacosCommandLine)(this.lastCall, reach)}\n`);
    const secrets = secretVariables(this.lastCall.headers);
    if (secrets.length)
      output.err(`Secrets are not printed: set ${secrets.map((name) => `$${name}`).join(', ')} before running it.\n`);
  }
}

/** Text in lines of at most 100 columns, each indented. */
function wrap(text: string, indent: string): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && indent.length + line.length + 1 + word.length > 100) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  return lines.map((one) => indent + one).join('\n');
}

/** Rejects as a cancelled command ("Cancelled.") once `signal` aborts. */
function cancelled(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) =>
    signal.addEventListener('abort', () => reject(new TacosError('Cancelled.', {code: 'CANCELLED', exitCode: 130})), {
      once: true,
    }),
  );
}
