import {Writable} from 'node:stream';
import {confirm, input, select} from '@inquirer/prompts';
import {
  ScalarType,
  create,
  toJson,
  type DescEnum,
  type DescField,
  type DescMessage,
  type DescMethod,
  type DescOneof,
  type DescService,
  type JsonObject,
  type JsonValue,
  type Registry,
} from '@bufbuild/protobuf';
import {DurationSchema, FeatureSet_FieldPresence, TimestampSchema} from '@bufbuild/protobuf/wkt';
import {TacosError} from '../errors.js';
import type {Prompter} from './run-call.js';
import type {Schema} from './schema.js';
import {scalarZeroJson} from './json-zero.js';

export interface PromptIO {
  input?: NodeJS.ReadableStream;
  output?: NodeJS.WritableStream;
}

/**
 * The prompts of `tacos call` on a terminal, as Evans asks them: the service and method from lists,
 * then the request field by field in declaration order, labelled `{ancestor}::{field} (TYPE) =>`.
 * Requests come back in the proto3 JSON mapping, ready for fromJson(method.input, json).
 */
export function createPrompter(io: PromptIO = {}): Prompter {
  const ask = new Ask(io);
  return {
    method: (schema) => chooseMethod(ask, schema),
    request: async (method, registry) => {
      const filler = new Filler(ask, registry);
      const streaming = method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming';
      const requests: JsonValue[] = [await filler.message(method.input, '', [])];
      while (streaming && (await ask.yes(`send another message? (${requests.length} so far)`, false))) {
        requests.push(await filler.message(method.input, '', []));
      }
      return requests;
    },
  };
}

const KIND_LABELS: Record<DescMethod['methodKind'], string> = {
  unary: 'unary',
  server_streaming: 'server streaming',
  client_streaming: 'client streaming',
  bidi_streaming: 'bidi streaming',
};

async function chooseMethod(ask: Ask, schema: Schema): Promise<DescMethod> {
  const services = schema.services.filter((service) => service.methods.length > 0);
  if (services.length === 0)
    throw new TacosError('The server offers no services to call.', {
      hint: 'Check the address, or give the schema with --proto FILE.',
      code: 'NO_SERVICES',
    });
  // A one-entry list is a keystroke for nothing.
  const service =
    services.length === 1
      ? services[0]
      : await ask.choose<DescService>(
          'service =>',
          services.map((s) => ({name: s.typeName, value: s})),
        );
  return ask.choose<DescMethod>(
    `${service.typeName} method =>`,
    service.methods.map((m) => ({
      name: `${m.name} (${KIND_LABELS[m.methodKind]})`,
      short: m.name,
      value: m,
      description: `${m.input.typeName} → ${m.output.typeName}`,
    })),
  );
}

interface Choice<T> {
  name: string;
  value: T;
  description?: string;
  /** Shown once chosen. */
  short?: string;
}

type KeypressListener = (text: unknown, key?: {ctrl?: boolean; name?: string}) => void;

/** Each prompt of inquirer, with the shared streams, Ctrl-C and Ctrl-D mapped to "Cancelled." */
class Ask {
  constructor(private readonly io: PromptIO) {}

  text(message: string, validate: (text: string) => true | string): Promise<string> {
    // 'clear' so that a rejected answer is retyped, not appended to.
    return this.run((context) => input({message, validate, theme: {validationFailureMode: 'clear'}}, context));
  }

  yes(message: string, defaultValue: boolean): Promise<boolean> {
    return this.run((context) => confirm({message, default: defaultValue}, context));
  }

  choose<T>(message: string, choices: Array<Choice<T>>): Promise<T> {
    return this.run((context) => select<T>({message, choices, pageSize: 12}, context));
  }

  private async run<T>(
    start: (context: {
      input?: NodeJS.ReadableStream;
      output?: NodeJS.WritableStream;
      signal: AbortSignal;
    }) => Promise<T>,
  ): Promise<T> {
    const abort = new AbortController();
    const source = this.io.input ?? process.stdin;
    // Inquirer ends the output it is given after each prompt: give it one it may end.
    const output = this.io.output && keepOpen(this.io.output);
    let pending: Promise<T>;
    try {
      pending = start({input: this.io.input, output, signal: abort.signal});
    } catch (error) {
      throw asCancel(error);
    }
    // Readline closes on Ctrl-D but inquirer then waits forever: treat it as the end, as Evans does.
    const onKeypress: KeypressListener = (_text, key) => {
      if (key?.ctrl && key.name === 'd') abort.abort();
    };
    source.on('keypress', onKeypress);
    try {
      return await pending;
    } catch (error) {
      throw asCancel(error);
    } finally {
      source.removeListener('keypress', onKeypress);
    }
  }
}

function asCancel(error: unknown): unknown {
  const name = (error as {name?: string} | undefined)?.name;
  if (name === 'ExitPromptError' || name === 'AbortPromptError' || name === 'CancelPromptError') {
    return new TacosError('Cancelled.', {exitCode: 130, code: 'CANCELLED', cause: error});
  }
  return error;
}

/** A writable that forwards to `target` and survives end(), with the terminal size readline asks for. */
function keepOpen(target: NodeJS.WritableStream): NodeJS.WritableStream {
  const sink = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      target.write(chunk);
      callback();
    },
  });
  const tty = target as Partial<{columns: number; rows: number; isTTY: boolean}>;
  Object.defineProperties(sink, {
    columns: {get: () => tty.columns},
    rows: {get: () => tty.rows},
    isTTY: {get: () => tty.isTTY ?? false},
  });
  return sink;
}

/** A message type seen this many times among a field's ancestors is not offered again. */
const MAX_RECURSION = 3;
/** Whatever the types, no deeper than this. */
const MAX_DEPTH = 32;

type Presence = 'implicit' | 'optional' | 'required' | 'set';

/** Asks for the fields of messages; values are returned in the proto3 JSON mapping. */
class Filler {
  constructor(
    private readonly ask: Ask,
    private readonly registry: Registry,
  ) {}

  /** Every member in declaration order; a oneof is asked where its first field is declared. */
  async message(desc: DescMessage, path: string, ancestry: DescMessage[]): Promise<JsonObject> {
    const lineage = [...ancestry, desc];
    const json: JsonObject = {};
    for (const member of desc.members) {
      if (member.kind === 'oneof') {
        const chosen = await this.oneof(member, path, lineage);
        if (chosen) json[chosen.field.jsonName] = chosen.value;
        continue;
      }
      const value = await this.field(member, path, lineage);
      if (value !== undefined) json[member.jsonName] = value;
    }
    return json;
  }

  private async oneof(
    oneof: DescOneof,
    path: string,
    lineage: DescMessage[],
  ): Promise<{field: DescField; value: JsonValue} | undefined> {
    const offered = oneof.fields.filter((field) => !field.message || offerable(field.message, lineage));
    const field = await this.ask.choose<DescField | undefined>(`${join(path, oneof.name)} (oneof) =>`, [
      {name: 'none', value: undefined},
      ...offered.map((f) => ({name: `${f.name} (${typeLabel(f)})`, short: f.name, value: f})),
    ]);
    if (!field) return undefined;
    // The case is chosen: its value is set even when it is the default.
    const value = await this.single(field, join(path, field.name), lineage, 'set');
    return {field, value: value ?? zeroValue(field)};
  }

  /** A field's JSON value, or undefined to leave it out. */
  private async field(field: DescField, path: string, lineage: DescMessage[]): Promise<JsonValue | undefined> {
    const label = join(path, field.name);
    switch (field.fieldKind) {
      case 'list':
        return nonEmpty(await this.list(field, label, lineage));
      case 'map':
        return nonEmpty(await this.map(field, label, lineage));
      default:
        return this.single(field, label, lineage, presenceOf(field));
    }
  }

  private async single(
    field: DescField,
    label: string,
    lineage: DescMessage[],
    presence: Presence,
  ): Promise<JsonValue | undefined> {
    if (field.fieldKind === 'scalar') return this.scalar(field.scalar, label, presence);
    if (field.fieldKind === 'enum') return this.enumValue(field.enum, label, presence);
    if (field.fieldKind !== 'message') return undefined;
    const desc = field.message;
    if (isTextual(desc)) return this.wellKnown(desc, label, presence === 'set' ? 'set' : 'optional');
    if (!offerable(desc, lineage)) return undefined;
    // Filled without asking, as Evans does, unless `optional` or recursive (which would never end).
    const recursive = lineage.some((ancestor) => ancestor.typeName === desc.typeName);
    const optional = presence !== 'set' && (field.proto.proto3Optional || recursive);
    if (optional && !(await this.ask.yes(`fill ${label}? (${desc.typeName})`, false))) return undefined;
    const json = await this.message(desc, label, lineage);
    // An untouched message filled automatically stays unset; one asked for is set, even empty.
    return Object.keys(json).length > 0 || optional || presence === 'set' || presence === 'required' ? json : undefined;
  }

  private async list(
    field: DescField & {fieldKind: 'list'},
    label: string,
    lineage: DescMessage[],
  ): Promise<JsonValue[]> {
    const values: JsonValue[] = [];
    for (;;) {
      const element = `${label}[${values.length}]`;
      let value: JsonValue | undefined;
      if (field.listKind === 'scalar') {
        value = await this.scalar(field.scalar, element, 'optional', 'empty ends');
      } else if (field.listKind === 'enum') {
        value = await this.enumValue(field.enum, element, 'optional', 'done');
      } else if (isTextual(field.message)) {
        value = await this.wellKnown(field.message, element, 'optional', 'empty ends');
      } else {
        if (!offerable(field.message, lineage)) return values;
        const question =
          values.length === 0 ? `add ${label}? (repeated ${field.message.typeName})` : `add another ${label}?`;
        if (!(await this.ask.yes(question, false))) return values;
        value = await this.message(field.message, element, lineage);
      }
      if (value === undefined) return values;
      values.push(value);
    }
  }

  private async map(field: DescField & {fieldKind: 'map'}, label: string, lineage: DescMessage[]): Promise<JsonObject> {
    const entries: JsonObject = {};
    if (field.mapKind === 'message' && !isTextual(field.message) && !offerable(field.message, lineage)) return entries;
    for (;;) {
      const key = await this.scalar(field.mapKey, `${label}::key`, 'optional', 'empty ends');
      if (key === undefined) return entries;
      const valueLabel = `${label}[${String(key)}]`;
      let value: JsonValue | undefined;
      if (field.mapKind === 'scalar')
        value = (await this.scalar(field.scalar, valueLabel, 'set')) ?? scalarZeroJson(field.scalar);
      else if (field.mapKind === 'enum') value = await this.enumValue(field.enum, valueLabel, 'set');
      else if (isTextual(field.message)) value = await this.wellKnown(field.message, valueLabel, 'set');
      else value = await this.message(field.message, valueLabel, lineage);
      // JSON object keys are strings, whatever the key type (64-bit keys stay exact).
      entries[String(key)] = value ?? null;
    }
  }

  /**
   * A scalar typed and checked as entered. Empty input: the default (left out) for implicit
   * presence, unset for `optional`, the zero value when set is required.
   */
  private async scalar(
    type: ScalarType,
    label: string,
    presence: Presence,
    hint?: string,
  ): Promise<JsonValue | undefined> {
    const name = `TYPE_${ScalarType[type]}`;
    if (type === ScalarType.BOOL)
      return this.bool(`${label} (${name}${hint ? `, ${hint}` : ''}) =>`, presence, hint !== undefined);
    const notes = [name, hint ?? (presence === 'optional' ? 'optional, empty leaves unset' : undefined)];
    if (type === ScalarType.STRING && presence === 'optional' && !hint) notes.push('"" for empty');
    if (type === ScalarType.BYTES) notes.push('base64');
    const text = await this.ask.text(`${label} (${notes.filter(Boolean).join(', ')}) =>`, (answer) => {
      if (answer === '') return presence === 'required' ? 'A value is required.' : true;
      return check(() => parseScalar(type, answer));
    });
    if (text === '') return undefined;
    // For optional strings only, `""` is how to set the empty string rather than leave it unset.
    const value =
      type === ScalarType.STRING && presence === 'optional' && !hint && text === '""' ? '' : parseScalar(type, text);
    return presence === 'implicit' && isZero(value) ? undefined : value;
  }

  private async bool(message: string, presence: Presence, inList: boolean): Promise<JsonValue | undefined> {
    if (presence === 'implicit' || presence === 'set' || presence === 'required') {
      const value = await this.ask.yes(message, false);
      return value || presence !== 'implicit' ? value : undefined;
    }
    return this.ask.choose<boolean | undefined>(message, [
      {name: inList ? 'done' : 'leave unset', value: undefined},
      {name: 'true', value: true},
      {name: 'false', value: false},
    ]);
  }

  /** An enum from its value names; the first (zero) value of an implicit field is left out. */
  private async enumValue(
    desc: DescEnum,
    label: string,
    presence: Presence,
    doneChoice?: string,
  ): Promise<JsonValue | undefined> {
    const choices: Array<Choice<JsonValue | undefined>> = desc.values.map((value) => ({
      name: `${value.name} (${value.number})`,
      short: value.name,
      value: enumJson(desc, value.name),
    }));
    if (doneChoice) choices.unshift({name: doneChoice, value: undefined});
    else if (presence === 'optional') choices.unshift({name: 'leave unset', value: undefined});
    const chosen = await this.ask.choose(`${label} (TYPE_ENUM ${desc.typeName}) =>`, choices);
    if (presence === 'implicit' && chosen === enumJson(desc, desc.values.find((v) => v.number === 0)?.name))
      return undefined;
    return chosen;
  }

  /** The well-known types read as text: Timestamp, Duration, wrappers, Struct/Value/ListValue, FieldMask, Any. */
  private async wellKnown(
    desc: DescMessage,
    label: string,
    presence: 'optional' | 'set',
    hint?: string,
  ): Promise<JsonValue | undefined> {
    const wrapped = WRAPPERS[desc.typeName];
    if (wrapped !== undefined) {
      const value = await this.scalar(
        wrapped,
        label,
        hint ? 'optional' : presence === 'set' ? 'set' : 'optional',
        hint,
      );
      return value === undefined && presence === 'set' ? scalarZeroJson(wrapped) : value;
    }
    const format = TEXT_FORMATS[desc.typeName];
    const notes = [desc.typeName, format.hint, hint ?? (presence === 'optional' ? 'empty leaves unset' : undefined)];
    // A chosen oneof case or a map value needs a value: these types have no empty JSON form.
    const text = await this.ask.text(`${label} (${notes.filter(Boolean).join(', ')}) =>`, (answer) => {
      if (answer.trim() === '') return presence === 'set' ? 'A value is required.' : true;
      return check(() => format.parse(answer.trim(), this.registry));
    });
    if (text.trim() === '') return undefined;
    return format.parse(text.trim(), this.registry);
  }
}

function presenceOf(field: DescField): Presence {
  if (field.presence === FeatureSet_FieldPresence.LEGACY_REQUIRED) return 'required';
  // Proto2 optional and proto3 `optional` track presence: they may stay unset.
  return field.presence === FeatureSet_FieldPresence.EXPLICIT && field.fieldKind !== 'message'
    ? 'optional'
    : 'implicit';
}

function offerable(desc: DescMessage, lineage: DescMessage[]): boolean {
  return (
    lineage.length < MAX_DEPTH &&
    lineage.filter((ancestor) => ancestor.typeName === desc.typeName).length < MAX_RECURSION
  );
}

function join(path: string, name: string): string {
  return path ? `${path}::${name}` : name;
}

function nonEmpty<T extends JsonValue[] | JsonObject>(value: T): T | undefined {
  return Object.keys(value).length > 0 ? value : undefined;
}

function check(parse: () => unknown): true | string {
  try {
    parse();
    return true;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

function typeLabel(field: DescField): string {
  if (field.fieldKind === 'scalar') return `TYPE_${ScalarType[field.scalar]}`;
  if (field.fieldKind === 'enum') return `TYPE_ENUM ${field.enum.typeName}`;
  if (field.fieldKind === 'message') return `TYPE_MESSAGE ${field.message.typeName}`;
  return field.fieldKind;
}

/** google.protobuf.NullValue is `null` in JSON; other enums are their value names. */
function enumJson(desc: DescEnum, name: string | undefined): JsonValue | undefined {
  if (name === undefined) return undefined;
  return desc.typeName === 'google.protobuf.NullValue' ? null : name;
}

function zeroValue(field: DescField): JsonValue {
  if (field.fieldKind === 'scalar') return scalarZeroJson(field.scalar);
  if (field.fieldKind === 'enum')
    return enumJson(field.enum, field.enum.values.find((v) => v.number === 0)?.name ?? field.enum.values[0]?.name) ?? 0;
  return {};
}

function isZero(value: JsonValue): boolean {
  return value === '' || value === '0' || value === false || (value === 0 && !Object.is(value, -0));
}

const INT_RANGES: Partial<Record<ScalarType, [bigint, bigint, string]>> = {
  [ScalarType.INT32]: [-(2n ** 31n), 2n ** 31n - 1n, 'a 32-bit integer'],
  [ScalarType.SINT32]: [-(2n ** 31n), 2n ** 31n - 1n, 'a 32-bit integer'],
  [ScalarType.SFIXED32]: [-(2n ** 31n), 2n ** 31n - 1n, 'a 32-bit integer'],
  [ScalarType.UINT32]: [0n, 2n ** 32n - 1n, 'an unsigned 32-bit integer'],
  [ScalarType.FIXED32]: [0n, 2n ** 32n - 1n, 'an unsigned 32-bit integer'],
  [ScalarType.INT64]: [-(2n ** 63n), 2n ** 63n - 1n, 'a 64-bit integer'],
  [ScalarType.SINT64]: [-(2n ** 63n), 2n ** 63n - 1n, 'a 64-bit integer'],
  [ScalarType.SFIXED64]: [-(2n ** 63n), 2n ** 63n - 1n, 'a 64-bit integer'],
  [ScalarType.UINT64]: [0n, 2n ** 64n - 1n, 'an unsigned 64-bit integer'],
  [ScalarType.FIXED64]: [0n, 2n ** 64n - 1n, 'an unsigned 64-bit integer'],
};
const LONG_TYPES = new Set([
  ScalarType.INT64,
  ScalarType.SINT64,
  ScalarType.SFIXED64,
  ScalarType.UINT64,
  ScalarType.FIXED64,
]);
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const BASE64 = /^(?:[A-Za-z0-9+/]*|[A-Za-z0-9_-]*)={0,2}$/;
const FLOAT_MAX = 3.4028234663852886e38;

/** Text → proto3 JSON value; throws a message for the user when the text does not fit the type. */
export function parseScalar(type: ScalarType, text: string): JsonValue {
  const range = INT_RANGES[type];
  if (range) {
    const [min, max, what] = range;
    if (!/^[+-]?\d+$/.test(text)) return fail(`Not ${what}: ${text}`);
    // BigInt, never Number: 64-bit values beyond 2^53 must stay exact.
    const value = BigInt(text);
    if (value < min || value > max) return fail(`Out of range for ${what} (${min} to ${max}).`);
    return LONG_TYPES.has(type) ? value.toString() : Number(value);
  }
  switch (type) {
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT: {
      if (text === 'NaN' || text === 'Infinity' || text === '-Infinity') return text;
      if (!DECIMAL.test(text)) return fail(`Not a number: ${text}`);
      const value = Number(text);
      if (!Number.isFinite(value) || (type === ScalarType.FLOAT && Math.abs(value) > FLOAT_MAX))
        return fail(`Out of range for ${type === ScalarType.FLOAT ? 'a float' : 'a double'}.`);
      return value;
    }
    case ScalarType.BOOL:
      if (/^(true|t|y|yes|1)$/i.test(text)) return true;
      if (/^(false|f|n|no|0)$/i.test(text)) return false;
      return fail(`Not a bool (true or false): ${text}`);
    case ScalarType.BYTES: {
      const body = text.replace(/=+$/, '');
      if (!BASE64.test(text) || body.length % 4 === 1 || (body !== text && text.length % 4 !== 0))
        return fail('Not base64 (e.g. aGVsbG8=).');
      return text;
    }
    default:
      return text;
  }
}

function fail(message: string): never {
  throw new Error(message);
}

const WRAPPERS: Record<string, ScalarType> = {
  'google.protobuf.DoubleValue': ScalarType.DOUBLE,
  'google.protobuf.FloatValue': ScalarType.FLOAT,
  'google.protobuf.Int64Value': ScalarType.INT64,
  'google.protobuf.UInt64Value': ScalarType.UINT64,
  'google.protobuf.Int32Value': ScalarType.INT32,
  'google.protobuf.UInt32Value': ScalarType.UINT32,
  'google.protobuf.BoolValue': ScalarType.BOOL,
  'google.protobuf.StringValue': ScalarType.STRING,
  'google.protobuf.BytesValue': ScalarType.BYTES,
};

interface TextFormat {
  hint: string;
  parse(text: string, registry: Registry): JsonValue;
}

const TEXT_FORMATS: Record<string, TextFormat> = {
  'google.protobuf.Timestamp': {
    hint: 'RFC 3339, e.g. 2026-11-25T10:00:00Z, or now',
    parse: (text) => parseTimestamp(text),
  },
  'google.protobuf.Duration': {hint: 'e.g. 1.5s, 250ms, 1h30m', parse: (text) => parseDuration(text)},
  'google.protobuf.Struct': {hint: 'JSON object', parse: (text) => parseJson(text, 'object')},
  'google.protobuf.Value': {hint: 'JSON', parse: (text) => parseJson(text)},
  'google.protobuf.ListValue': {hint: 'JSON array', parse: (text) => parseJson(text, 'array')},
  'google.protobuf.FieldMask': {
    hint: 'paths, e.g. user.name,status',
    parse: (text) =>
      text
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean)
        .join(','),
  },
  'google.protobuf.Any': {hint: 'JSON with "@type"', parse: (text, registry) => parseAny(text, registry)},
};

function isTextual(desc: DescMessage): boolean {
  return desc.typeName in TEXT_FORMATS || desc.typeName in WRAPPERS;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;
const TIMESTAMP_MIN = -62135596800n; // 0001-01-01T00:00:00Z
const TIMESTAMP_MAX = 253402300799n; // 9999-12-31T23:59:59Z

/** RFC 3339 (any offset, up to nanoseconds) → the canonical UTC form of the proto3 JSON mapping. */
export function parseTimestamp(text: string): string {
  let seconds: bigint;
  let nanos = 0;
  if (text.toLowerCase() === 'now') {
    const ms = Date.now();
    seconds = BigInt(Math.floor(ms / 1000));
    nanos = (ms % 1000) * 1_000_000;
  } else {
    const match = RFC3339.exec(text);
    if (!match) return fail('Not an RFC 3339 timestamp (e.g. 2026-11-25T10:00:00Z).');
    const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number);
    const date = new Date(0);
    // setUTCFullYear, not Date.UTC: years below 100 would be read as 19xx.
    date.setUTCFullYear(year, month - 1, day);
    date.setUTCHours(hour, minute, second);
    const offsetHours = Number(match[10] ?? 0);
    const offsetMinutes = Number(match[11] ?? 0);
    if (
      date.getUTCMonth() !== month - 1 ||
      date.getUTCDate() !== day ||
      hour > 23 ||
      minute > 59 ||
      second > 59 ||
      offsetHours > 23 ||
      offsetMinutes > 59
    ) {
      return fail(`Not a valid date and time: ${text}`);
    }
    const offset = (match[9] === '-' ? -1 : 1) * (offsetHours * 3600 + offsetMinutes * 60);
    seconds = BigInt(date.getTime() / 1000) - BigInt(offset);
    nanos = Number((match[7] ?? '').padEnd(9, '0'));
  }
  if (seconds < TIMESTAMP_MIN || seconds > TIMESTAMP_MAX) return fail('Out of range (years 0001 to 9999).');
  return toJson(TimestampSchema, create(TimestampSchema, {seconds, nanos}));
}

const DURATION = /^([+-])?((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$/;
const DURATION_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g;
const UNIT_NANOS: Record<string, bigint> = {
  ns: 1n,
  us: 1000n,
  µs: 1000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};
const DURATION_MAX_SECONDS = 315_576_000_000n;

/** `1.5s`, `-250ms`, `1h30m` (Go's syntax) → the proto3 JSON form (`1.500s`). */
export function parseDuration(text: string): string {
  const match = DURATION.exec(text);
  if (!match) return fail('Not a duration (e.g. 1.5s, 250ms, 1h30m).');
  let total = 0n;
  for (const [, amount, unit] of text.matchAll(DURATION_PART)) {
    const [whole, fraction = ''] = amount.split('.');
    const scale = UNIT_NANOS[unit];
    total +=
      BigInt(whole || '0') * scale + (fraction ? (BigInt(fraction) * scale) / 10n ** BigInt(fraction.length) : 0n);
  }
  if (match[1] === '-') total = -total;
  const seconds = total / 1_000_000_000n;
  if (seconds > DURATION_MAX_SECONDS || seconds < -DURATION_MAX_SECONDS)
    return fail('Out of range (at most 10000 years).');
  return toJson(DurationSchema, create(DurationSchema, {seconds, nanos: Number(total % 1_000_000_000n)}));
}

function parseJson(text: string, shape?: 'object' | 'array'): JsonValue {
  let value: JsonValue;
  try {
    value = JSON.parse(text) as JsonValue;
  } catch {
    return fail(`Not JSON${shape ? ` (a JSON ${shape}, e.g. ${shape === 'object' ? '{"a": 1}' : '[1, "b"]'})` : ''}.`);
  }
  if (shape === 'object' && (typeof value !== 'object' || value === null || Array.isArray(value)))
    return fail('Not a JSON object.');
  if (shape === 'array' && !Array.isArray(value)) return fail('Not a JSON array.');
  return value;
}

function parseAny(text: string, registry: Registry): JsonValue {
  const value = parseJson(text, 'object') as JsonObject;
  const type = value['@type'];
  if (typeof type !== 'string')
    return fail('An Any needs "@type", e.g. {"@type": "type.googleapis.com/pkg.Message", ...}.');
  const name = type.slice(type.lastIndexOf('/') + 1);
  if (!registry.getMessage(name)) return fail(`Unknown type ${name}: the schema does not have it.`);
  return value;
}
