import dotenv from 'dotenv';
import {TacosError} from './errors.js';

/** One `KEY=value` entry of an env file, located in the file's text (without its BOM). */
export interface EnvEntry {
  key: string;
  /** 1-based line of the key. */
  line: number;
  /** Last line of the entry (a quoted value may span lines). */
  endLine: number;
  exported: boolean;
  /** The quote around the value, or '' for an unquoted value. */
  quote: '' | '"' | "'" | '`';
  /** Offsets of the value between its quotes (or of the trimmed unquoted value) in `body`. */
  valueStart: number;
  valueEnd: number;
  /** The value as written between the quotes (no escapes expanded), one character a byte. */
  raw: string;
}

/** A replacement of `start`..`end` of a text by `text`. */
export interface TextEdit {
  start: number;
  end: number;
  text: string;
}

/**
 * An env file kept as its exact bytes: edits replace value spans only, so comments, order, blank
 * lines, `export `, quotes, inline comments, line endings, a BOM and bytes in any encoding stay as
 * they were. The text is the bytes read as Latin-1, one character a byte, so nothing is decoded
 * (and so replaced) on the way; values are decoded as UTF-8 only where they are read.
 */
export interface EnvDocument {
  /** The UTF-8 byte order mark, or ''. */
  bom: string;
  /** The text after the BOM, one character a byte. */
  body: string;
  /** The line ending the file uses (the first one found; `\n` when there is none). */
  eol: string;
  entries: EnvEntry[];
}

export class EnvParseError extends TacosError {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly problem: string,
  ) {
    super(`Cannot parse ${file}, line ${line}: ${problem}.`, {
      hint: 'Fix the line by hand (KEY=value, a # comment or a blank line); tacos leaves a file it cannot parse untouched.',
      code: 'ENV_PARSE',
    });
    this.name = 'EnvParseError';
  }
}

const KEY_LINE = /^([ \t]*)(export[ \t]+)?([\w.-]+)[ \t]*=/;

const UTF8_BOM = '\xEF\xBB\xBF';

/** Parses an env file with dotenv's rules, strictly: anything else is an error. */
export function parseEnvDocument(bytes: Buffer, file: string): EnvDocument {
  const text = bytes.toString('latin1');
  const bom = text.startsWith(UTF8_BOM) ? UTF8_BOM : '';
  const body = text.slice(bom.length);
  const eol = /\r\n|\n|\r/.exec(body)?.[0] ?? '\n';
  const entries: EnvEntry[] = [];
  // Line starts, so offsets map to line numbers.
  const lineStarts = [0];
  for (const match of body.matchAll(/\r\n|\n|\r/g)) lineStarts.push(match.index + match[0].length);
  const lineOf = (offset: number) => {
    let low = 0;
    let high = lineStarts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (lineStarts[mid] <= offset) low = mid;
      else high = mid - 1;
    }
    return low + 1;
  };
  const lineEnd = (offset: number) => {
    const match = /\r\n|\n|\r/g;
    match.lastIndex = offset;
    const found = match.exec(body);
    return found ? found.index : body.length;
  };

  let position = 0;
  while (position < body.length) {
    const line = lineOf(position);
    const end = lineEnd(position);
    const text = body.slice(position, end);
    const next = end + (/^(\r\n|\n|\r)/.exec(body.slice(end, end + 2))?.[0].length ?? 0);
    if (/^\s*(#.*)?$/.test(text)) {
      position = next;
      continue;
    }
    const head = KEY_LINE.exec(text);
    if (!head) throw new EnvParseError(file, line, 'not a KEY=value line, a comment or a blank line');
    const key = head[3];
    let cursor = position + head[0].length;
    while (body[cursor] === ' ' || body[cursor] === '\t') cursor++;
    const first = body[cursor];
    if (first === '"' || first === "'" || first === '`') {
      const quote = first;
      let close = cursor + 1;
      while (close < body.length && body[close] !== quote)
        close += body[close] === '\\' && body[close + 1] === quote ? 2 : 1;
      if (close >= body.length)
        throw new EnvParseError(file, line, `the ${quote}-quoted value of ${key} is never closed`);
      const closeEnd = lineEnd(close);
      if (!/^\s*(#.*)?$/.test(body.slice(close + 1, closeEnd))) {
        throw new EnvParseError(file, lineOf(close), `unexpected text after the closing ${quote} of ${key}`);
      }
      entries.push({
        key,
        line,
        endLine: lineOf(close),
        exported: Boolean(head[2]),
        quote,
        valueStart: cursor + 1,
        valueEnd: close,
        raw: body.slice(cursor + 1, close),
      });
      position = closeEnd + (/^(\r\n|\n|\r)/.exec(body.slice(closeEnd, closeEnd + 2))?.[0].length ?? 0);
      continue;
    }
    // Unquoted: up to an inline comment or the end of the line, trimmed.
    const hash = text.indexOf('#', cursor - position);
    const valueText = text.slice(cursor - position, hash === -1 ? text.length : hash);
    // ASCII blanks only: a trailing 0xA0 may end a UTF-8 character (valuesOf trims as dotenv does).
    const trimmed = valueText.replace(/[ \t\v\f]+$/, '');
    entries.push({
      key,
      line,
      endLine: line,
      exported: Boolean(head[2]),
      quote: '',
      valueStart: cursor,
      valueEnd: cursor + trimmed.length,
      raw: trimmed,
    });
    position = next;
  }

  // What dotenv reads must be what this parser reads, or an edit could change another value.
  const ours = valuesOf({bom, body, eol, entries});
  const theirs = dotenv.parse(bytes.subarray(bom.length));
  for (const key of new Set([...Object.keys(ours), ...Object.keys(theirs)])) {
    if (ours[key] !== theirs[key]) {
      const entry = entries.findLast((candidate) => candidate.key === key);
      throw new EnvParseError(
        file,
        entry?.line ?? 1,
        `dotenv reads ${key} differently than expected (an unusual quote or escape)`,
      );
    }
  }
  return {bom, body, eol, entries};
}

/** The text of a document's bytes as UTF-8, as dotenv and the gateway read it. */
export function decodeUtf8(text: string): string {
  return Buffer.from(text, 'latin1').toString('utf8');
}

/** The values as dotenv reads them: UTF-8, quotes removed, `\n` expanded in double quotes, CRLF as LF, last duplicate wins. */
export function valuesOf(document: EnvDocument): Record<string, string> {
  const values: Record<string, string> = {};
  for (const entry of document.entries) {
    let value = (/[\x80-\xff]/.test(entry.raw) ? decodeUtf8(entry.raw) : entry.raw).replace(/\r\n?/g, '\n');
    if (entry.quote === '') value = value.trim();
    if (entry.quote === '"') value = value.replace(/\\n/g, '\n').replace(/\\r/g, '\r');
    values[entry.key] = value;
  }
  return values;
}

/**
 * The edits that set KEY to `value` (which needs no quoting) everywhere it appears, keeping each
 * entry's quotes, and append `KEY=value` when it is missing; in order of position in the body.
 */
export function valueEdits(document: EnvDocument, changes: Record<string, string>): TextEdit[] {
  const edits: TextEdit[] = [];
  const missing: string[] = [];
  const exportAll = document.entries.length > 0 && document.entries.every((entry) => entry.exported);
  const changed = new Set(Object.keys(changes));
  for (const entry of document.entries) {
    if (changed.has(entry.key) && entry.raw !== changes[entry.key])
      edits.push({start: entry.valueStart, end: entry.valueEnd, text: changes[entry.key]});
  }
  for (const [key, value] of Object.entries(changes)) {
    if (!document.entries.some((entry) => entry.key === key))
      missing.push(`${exportAll ? 'export ' : ''}${key}=${value}`);
  }
  if (missing.length > 0) {
    // Keep the file's line ending, and whether it ends with one.
    const {body, eol} = document;
    const endsWithNewline = body === '' || /(\r\n|\n|\r)$/.test(body);
    const text = endsWithNewline
      ? missing.map((line) => line + eol).join('')
      : missing.map((line) => eol + line).join('');
    edits.push({start: body.length, end: body.length, text});
  }
  return edits;
}

/** `text` with `edits` (in order, not overlapping) applied, in one pass. */
export function applyEdits(text: string, edits: TextEdit[]): string {
  const pieces: string[] = [];
  let cursor = 0;
  for (const edit of edits) {
    pieces.push(text.slice(cursor, edit.start), edit.text);
    cursor = edit.end;
  }
  pieces.push(text.slice(cursor));
  return pieces.join('');
}
