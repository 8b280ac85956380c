import type {Schema} from '../grpc-client/schema.js';
import {CALL_FLAGS, COMMAND_NAMES, SHOW_WHATS, scanWords} from './commands.js';
import {packagesOf, selectedService, servicesIn, shortName, typesIn, type Selection} from './scope.js';

/** call's flags followed by a value of the user's own (nothing to complete there). */
const VALUE_FLAGS = ['-d', '--data', '--example'];

/** What completion needs to know of the session. */
export interface CompletionContext {
  schema: Schema;
  selection: Selection;
  /** Keys of the headers set with `header`. */
  headerKeys: string[];
}

/**
 * readline's completer: the candidates for the word being typed (the line up to the cursor), and
 * that word; a single candidate ends with a space. Commands first; then by command: packages, services of the package, methods of the
 * service and call's flags, messages and enums, show's subjects, header keys.
 */
export function complete(line: string, context: CompletionContext): [string[], string] {
  const {words, open} = scanWords(line);
  const ended = !open && (line === '' || /\s$/.test(line));
  const partial = ended ? '' : (words.pop() ?? '');
  const [command, ...args] = words;
  const matching = (candidates: string[]): [string[], string] => {
    const found = [...new Set(candidates)].filter((candidate) => candidate.startsWith(partial)).sort();
    // As a shell: the one candidate is a whole word, so the next can be typed at once (`key=` takes its value).
    return [found.length === 1 && !found[0].endsWith('=') ? [`${found[0]} `] : found, partial];
  };
  if (command === undefined) return matching(COMMAND_NAMES);
  const {schema, selection} = context;
  const previous = args.at(-1);
  switch (command) {
    case 'package':
      return args.length ? [[], partial] : matching(packagesOf(schema));
    case 'service':
      return args.length
        ? [[], partial]
        : matching(servicesIn(schema, selection).map((service) => shortName(selection, service.typeName)));
    case 'call': {
      if (VALUE_FLAGS.includes(previous ?? '')) return [[], partial];
      // Once the method is named, only flags are left to complete.
      const named = args.some((arg, i) => !arg.startsWith('-') && !VALUE_FLAGS.includes(args[i - 1]));
      if (partial.startsWith('-') || named) return matching(CALL_FLAGS);
      return matching(methodNames(context));
    }
    case 'desc': {
      if (args.length) return [[], partial];
      const types = typesIn(schema, selection).map((desc) => shortName(selection, desc.typeName));
      const services = servicesIn(schema, selection).map((service) => shortName(selection, service.typeName));
      return matching([...types, ...services, ...methodNames(context)]);
    }
    case 'show':
      return args.length ? [[], partial] : matching([...SHOW_WHATS]);
    case 'header':
      if (previous === '-r' || previous === '--remove') return matching(context.headerKeys);
      return matching(['-r', ...context.headerKeys.map((key) => `${key}=`)]);
    case 'export':
      return args.length ? [[], partial] : matching(['--grpcurl']);
    default:
      return [[], partial];
  }
}

/**
 * Methods as `call` takes them: bare in the selected service; else Service.Method in the package,
 * and bare names that only one of its services has.
 */
function methodNames({schema, selection}: CompletionContext): string[] {
  const service = selectedService(schema, selection);
  if (service) return service.methods.map((method) => method.name);
  const methods = servicesIn(schema, selection).flatMap((desc) => desc.methods);
  const bare = methods.map((method) => method.name);
  return [
    ...methods.map((method) => `${shortName(selection, method.parent.typeName)}.${method.name}`),
    ...bare.filter((name) => bare.indexOf(name) === bare.lastIndexOf(name)),
  ];
}
