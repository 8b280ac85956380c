import dotenv from 'dotenv';
import {TacosError} from '../errors.js';

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
  /** The value as written between the quotes (no escapes expanded). */
  raw: string;
}

/**
 * An env file kept as its exact text: edits replace value spans only, so comments, order, blank
 * lines, `export `, quotes, inline comments, line endings and a BOM stay as they were.
 */
export interface EnvDocument {
  bom: string;
  /** The text after the BOM. */
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

/** Parses an env file with the dotenv rules (ANCHORS.md "Env files"), strictly: anything else is an error. */
export function parseEnvDocument(text: string, file: string): EnvDocument {
  const bom = text.startsWith('\uFEFF') ? '\uFEFF' : '';
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
      while (close < body.length && body[close] !== quote) close += body[close] === '\\' && body[close + 1] === quote ? 2 : 1;
      if (close >= body.length) throw new EnvParseError(file, line, `the ${quote}-quoted value of ${key} is never closed`);
      const closeEnd = lineEnd(close);
      if (!/^\s*(#.*)?$/.test(body.slice(close + 1, closeEnd))) {
        throw new EnvParseError(file, lineOf(close), `unexpected text after the closing ${quote} of ${key}`);
      }
      entries.push({key, line, endLine: lineOf(close), exported: Boolean(head[2]), quote, valueStart: cursor + 1, valueEnd: close, raw: body.slice(cursor + 1, close)});
      position = closeEnd + (/^(\r\n|\n|\r)/.exec(body.slice(closeEnd, closeEnd + 2))?.[0].length ?? 0);
      continue;
    }
    // Unquoted: up to an inline comment or the end of the line, trimmed.
    const hash = text.indexOf('#', cursor - position);
    const valueText = text.slice(cursor - position, hash === -1 ? text.length : hash);
    const trimmed = valueText.trimEnd();
    entries.push({key, line, endLine: line, exported: Boolean(head[2]), quote: '', valueStart: cursor, valueEnd: cursor + trimmed.length, raw: trimmed});
    position = next;
  }

  // What dotenv reads must be what this parser reads, or an edit could change another value.
  const ours = valuesOf({bom, body, eol, entries});
  const theirs = dotenv.parse(body);
  for (const key of new Set([...Object.keys(ours), ...Object.keys(theirs)])) {
    if (ours[key] !== theirs[key]) {
      const entry = entries.findLast((candidate) => candidate.key === key);
      throw new EnvParseError(file, entry?.line ?? 1, `dotenv reads ${key} differently than expected (an unusual quote or escape)`);
    }
  }
  return {bom, body, eol, entries};
}

/** The values as dotenv reads them: quotes removed, `\n` expanded in double quotes, CRLF as LF, last duplicate wins. */
export function valuesOf(document: EnvDocument): Record<string, string> {
  const values: Record<string, string> = {};
  for (const entry of document.entries) {
    let value = entry.raw.replace(/\r\n?/g, '\n');
    if (entry.quote === '') value = value.trim();
    if (entry.quote === '"') value = value.replace(/\\n/g, '\n').replace(/\\r/g, '\r');
    values[entry.key] = value;
  }
  return values;
}

/**
 * Sets KEY to `value` (which needs no quoting) everywhere it appears, keeping each entry's quotes;
 * appends `KEY=value` when it is missing. Returns the new document text.
 */
export function setValues(document: EnvDocument, changes: Record<string, string>): string {
  const edits: Array<{start: number; end: number; text: string}> = [];
  const missing: string[] = [];
  const exportAll = document.entries.length > 0 && document.entries.every((entry) => entry.exported);
  for (const [key, value] of Object.entries(changes)) {
    const found = document.entries.filter((entry) => entry.key === key);
    for (const entry of found) {
      if (entry.raw !== value) edits.push({start: entry.valueStart, end: entry.valueEnd, text: value});
    }
    if (found.length === 0) missing.push(`${exportAll ? 'export ' : ''}${key}=${value}`);
  }
  let body = document.body;
  for (const edit of edits.sort((a, b) => b.start - a.start)) body = body.slice(0, edit.start) + edit.text + body.slice(edit.end);
  if (missing.length > 0) {
    // Keep the file's line ending, and whether it ends with one.
    const endsWithNewline = body === '' || /(\r\n|\n|\r)$/.test(body);
    body += endsWithNewline ? missing.map((line) => line + document.eol).join('') : missing.map((line) => document.eol + line).join('');
  }
  return document.bom + body;
}
