import {createInterface, type Interface} from 'node:readline';
import {TacosError, errorMessage, errorText as tacosErrorText} from '../errors.js';
import {stateDir} from '../paths.js';
import {openTarget, type ConnectionOptions, type Prompter} from '../grpc-client/run-call.js';
import {parseCommand} from './commands.js';
import {complete} from './completion.js';
import {isSecretHeader} from './export.js';
import {HistoryStore, MAX_LINES} from './history-store.js';
import {ReplSession, type ReplOutput} from './session.js';

export interface ReplOptions {
  connection: ConnectionOptions;
  package?: string;
  service?: string;
}

export interface ReplIO {
  input: NodeJS.ReadableStream & {isTTY?: boolean};
  output: NodeJS.WritableStream & {isTTY?: boolean};
  error: NodeJS.WritableStream;
  prompter: () => Promise<Prompter>;
}

/**
 * `tacos repl`: Evans's REPL over one connection to the target. Reads commands until `exit` or
 * Ctrl-D (then 0). A failed command prints as `tacos call` prints errors and the REPL goes on;
 * Ctrl-C clears the line, or cancels the call in flight. Lines typed and requests made are kept in
 * the state dir across runs.
 */
export async function runRepl(options: ReplOptions, io: ReplIO): Promise<number> {
  const connected = await openTarget(options.connection);
  const output: ReplOutput = {out: (text) => io.output.write(text), err: (text) => io.error.write(text)};
  let unsubscribe = () => {};
  let lines: LineSource | undefined;
  let session: ReplSession;
  // A line editor (and field prompts) only where both ends are a terminal: its escapes would garble a log.
  const terminal = Boolean(io.input.isTTY && io.output.isTTY);
  // Ctrl-C while a command runs (a terminal's line editor is closed then): cancels the call in
  // flight; with piped input and no call, it ends the REPL.
  const onSigint = () => {
    // After the terminal's ^C, so that "Cancelled." starts its own line.
    if (session.cancel()) output.out(terminal ? '\n' : '');
    else if (!terminal) lines?.close();
  };
  try {
    const history = await HistoryStore.load(stateDir());
    session = new ReplSession({
      connected,
      reach: {target: connected.target, options: options.connection},
      history,
      output,
      interactive: terminal,
      prompter: io.prompter,
      package: options.package,
      service: options.service,
    });
    lines = terminal ? new TerminalLines(io, history, () => session) : new PipedLines(io);
    const source = lines;
    // The server came back (restarted): its schema may be new.
    unsubscribe = connected.onReconnect(() => {
      session.reload().then(
        ({changed, summary}) => changed && source.note(oneLine(summary)),
        () => undefined,
      );
    });
    process.on('SIGINT', onSigint);
    if (terminal) output.out("tacos repl: 'help' lists the commands, Tab completes, Ctrl-D leaves.\n");
    for (;;) {
      const line = await source.read(session.prompt());
      if (line === undefined) break;
      try {
        if ((await session.run(parseCommand(line))) === 'exit') break;
      } catch (error) {
        output.err(errorText(error));
      }
    }
    await history.flush();
    return 0;
  } finally {
    process.removeListener('SIGINT', onSigint);
    unsubscribe();
    lines?.close();
    connected.close();
  }
}

/** An error as `tacos call` prints it: the message and its hint; a cancelled prompt as "Cancelled.". */
function errorText(error: unknown): string {
  if (error instanceof TacosError) {
    if (error.code === 'CANCELLED') return 'Cancelled.\n';
    return tacosErrorText(error);
  }
  return `Error: ${errorMessage(error)}\n`;
}

/** A line is kept in the history file unless it sets a secret header (`header authorization=Bearer ...`). */
function keptInHistory(line: string): boolean {
  try {
    const command = parseCommand(line);
    return command.name !== 'header' || !command.set.some(([key]) => isSecretHeader(key));
  } catch {
    return true;
  }
}

/** Changes named in the one line said after a reconnect (a new server may change everything). */
const CHANGES_NAMED = 5;

/** reload()'s summary ("The schema changed:\n  added ...\n  removed ...") as one line. */
function oneLine(summary: string): string {
  const [head, ...lines] = summary.split('\n');
  // Services first: what a user of the REPL calls.
  const changes = lines
    .map((line) => line.trim())
    .sort((a, b) => Number(b.includes(' service ')) - Number(a.includes(' service ')));
  const more = changes.length - CHANGES_NAMED;
  return `${head} ${changes.slice(0, CHANGES_NAMED).join(', ')}${more > 0 ? ` and ${more} more` : ''}`;
}

/** Where lines come from: a terminal's line editor, or piped input. */
interface LineSource {
  /** The next line, or undefined at the end (Ctrl-D, end of input). */
  read(prompt: string): Promise<string | undefined>;
  /** A line of news (the schema changed) shown before the next prompt, or at once above the prompt shown. */
  note(text: string): void;
  close(): void;
}

/**
 * A readline line editor per line: completion, history (Up arrow, kept in the state dir), Ctrl-C
 * clears the line, Ctrl-D on an empty line ends. Closed while the command runs, so the field
 * prompts (inquirer) have the terminal to themselves and Ctrl-C reaches the process as SIGINT
 * (which cancels the call in flight); lines typed meanwhile wait in the terminal for the next one.
 */
class TerminalLines implements LineSource {
  private editor?: Interface;
  private notes: string[] = [];

  constructor(
    private readonly io: ReplIO,
    private readonly history: HistoryStore,
    private readonly session: () => ReplSession,
  ) {}

  read(prompt: string): Promise<string | undefined> {
    for (const note of this.notes.splice(0)) this.io.output.write(`${note}\n`);
    return new Promise((resolve) => {
      const editor = createInterface({
        input: this.io.input,
        output: this.io.output,
        terminal: true,
        history: [...this.history.lines],
        historySize: MAX_LINES,
        removeHistoryDuplicates: true,
        completer: (line: string) => complete(line, this.session().completionContext()),
      });
      this.editor = editor;
      let answered = false;
      editor.on('history', (lines: string[]) => {
        this.history.saveLines(lines.filter(keptInHistory)).catch(() => undefined);
      });
      editor.on('line', (line) => {
        answered = true;
        this.editor = undefined;
        editor.close();
        resolve(line);
      });
      editor.on('close', () => {
        this.editor = undefined;
        if (!answered) {
          this.io.output.write('\n');
          resolve(undefined);
        }
      });
      editor.on('SIGINT', () => {
        // As a shell: ^C after what was typed, then a fresh, empty prompt.
        editor.write(null, {ctrl: true, name: 'e'});
        this.io.output.write('^C\n');
        editor.write(null, {ctrl: true, name: 'u'});
        editor.prompt();
      });
      editor.setPrompt(prompt);
      editor.prompt();
    });
  }

  note(text: string): void {
    if (!this.editor) {
      this.notes.push(text);
      return;
    }
    // Above the prompt shown: clear its row, print, draw the prompt and what was typed again.
    this.io.output.write(`\r\x1b[2K${text}\n`);
    // The selection may have gone with the old schema.
    this.editor.setPrompt(this.session().prompt());
    this.editor.prompt(true);
  }

  close(): void {
    this.editor?.close();
  }
}

/** Lines piped in (a script of commands): no prompt, no editing; the end of input ends the REPL. */
class PipedLines implements LineSource {
  private readonly reader: Interface;
  private readonly lines: AsyncIterator<string>;

  constructor(private readonly io: Pick<ReplIO, 'input' | 'output'>) {
    this.reader = createInterface({input: io.input, terminal: false});
    this.lines = this.reader[Symbol.asyncIterator]();
  }

  async read(): Promise<string | undefined> {
    const next = await this.lines.next();
    return next.done ? undefined : next.value;
  }

  note(text: string): void {
    this.io.output.write(`${text}\n`);
  }

  close(): void {
    this.reader.close();
  }
}
