import type {TextEdit} from '../env-document.js';

interface Line {
  text: string;
  /** False for a last line without a line ending. */
  terminated: boolean;
  /** Offsets of the line in its text, `end` after its line ending. */
  start: number;
  end: number;
}

type Op = {kind: ' ' | '-' | '+'; line: Line};

function splitLines(text: string): Line[] {
  const lines: Line[] = [];
  const pattern = /([^\r\n]*)(\r\n|\n|\r)?/g;
  let match: RegExpExecArray | null;
  while ((match = pattern.exec(text)) && match[0] !== '') {
    lines.push({
      text: match[1],
      terminated: match[2] !== undefined,
      start: match.index,
      end: match.index + match[0].length,
    });
  }
  return lines;
}

/**
 * The edit script of `text` and `text` with `edits` applied (in order, not overlapping): the lines an
 * edit touches are removed and the lines they become added, every other line kept. Linear in the
 * text's size, where a general diff (longest common subsequence) is quadratic.
 */
function editScript(text: string, edits: TextEdit[]): Op[] {
  const lines = splitLines(text);
  // The line holding `offset` (lines.length past the end); offsets asked for only grow.
  let scan = 0;
  const lineAt = (offset: number) => {
    while (scan < lines.length && lines[scan].end <= offset) scan++;
    return scan;
  };
  /** The lines an edit touches, first..last; last = first - 1 for an insertion between two lines. */
  const touched = ({start, end}: TextEdit): [number, number] => {
    if (end > start) return [lineAt(start), lineAt(end - 1)];
    const line = lineAt(start);
    if (line < lines.length) return lines[line].start === start ? [line, line - 1] : [line, line];
    // At the end: into a last line without a line ending, else after every line.
    return lines.length > 0 && !lines[lines.length - 1].terminated ? [line - 1, line - 1] : [line, line - 1];
  };

  const ops: Op[] = [];
  // Changed lines that follow each other are one run: removals, then additions (as diff(1) prints them).
  let removed: Op[] = [];
  let added: Op[] = [];
  let next = 0; // the first line not yet in `ops` or the run
  const endRun = () => {
    for (const op of [removed, added].flat()) ops.push(op);
    removed = [];
    added = [];
  };
  const keepUpTo = (line: number) => {
    if (next >= line) return;
    endRun();
    while (next < line) ops.push({kind: ' ', line: lines[next++]});
  };
  for (let index = 0; index < edits.length;) {
    const [first, last] = touched(edits[index]);
    let end = index + 1;
    let lastLine = last;
    // Later edits on the lines touched so far belong to the same change.
    while (end < edits.length && touched(edits[end])[0] <= lastLine)
      lastLine = Math.max(lastLine, touched(edits[end++])[1]);
    keepUpTo(first);
    const regionStart = first <= lastLine ? lines[first].start : edits[index].start;
    const regionEnd = first <= lastLine ? lines[lastLine].end : regionStart;
    const pieces: string[] = [];
    let cursor = regionStart;
    for (const edit of edits.slice(index, end)) {
      pieces.push(text.slice(cursor, edit.start), edit.text);
      cursor = edit.end;
    }
    pieces.push(text.slice(cursor, regionEnd));
    for (let line = first; line <= lastLine; line++) removed.push({kind: '-', line: lines[line]});
    for (const line of splitLines(pieces.join(''))) added.push({kind: '+', line});
    next = Math.max(next, lastLine + 1);
    index = end;
  }
  endRun();
  keepUpTo(lines.length);
  return ops;
}

/**
 * A unified diff of `text` and `text` with `edits` applied (`context` lines around each change), or
 * '' when there is no edit. Line endings are not shown; a missing final newline is marked as diff(1) does.
 */
export function unifiedDiff(text: string, edits: TextEdit[], label: string, context = 3): string {
  const ops = editScript(text, edits);
  const changed = ops.map((op, index) => (op.kind === ' ' ? -1 : index)).filter((index) => index >= 0);
  if (changed.length === 0) return '';
  // Group the changes whose context overlaps into hunks.
  const hunks: Array<[number, number]> = [];
  for (const index of changed) {
    const last = hunks.at(-1);
    if (last && index - last[1] <= 2 * context + 1) last[1] = index;
    else hunks.push([index, index]);
  }
  // The old and new line numbers at each op.
  const oldLines: number[] = [];
  const newLines: number[] = [];
  let oldLine = 1;
  let newLine = 1;
  for (const op of ops) {
    oldLines.push(oldLine);
    newLines.push(newLine);
    if (op.kind !== '+') oldLine++;
    if (op.kind !== '-') newLine++;
  }
  const out = [`--- a/${label}`, `+++ b/${label}`];
  for (const [first, last] of hunks) {
    const from = Math.max(0, first - context);
    const to = Math.min(ops.length - 1, last + context);
    const slice = ops.slice(from, to + 1);
    const oldCount = slice.filter((op) => op.kind !== '+').length;
    const newCount = slice.filter((op) => op.kind !== '-').length;
    const range = (start: number, count: number) =>
      `${count === 0 ? start - 1 : start}${count === 1 ? '' : `,${count}`}`;
    out.push(`@@ -${range(oldLines[from], oldCount)} +${range(newLines[from], newCount)} @@`);
    for (const op of slice) {
      out.push(op.kind + op.line.text);
      if (!op.line.terminated) out.push('\\ No newline at end of file');
    }
  }
  return `${out.join('\n')}\n`;
}
