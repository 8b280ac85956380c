interface Line {
  text: string;
  /** False for a last line without a line ending. */
  terminated: boolean;
}

type Op = {kind: ' ' | '-' | '+'; line: Line};

function splitLines(text: string): Line[] {
  const lines: Line[] = [];
  const pattern = /([^\r\n]*)(\r\n|\n|\r)?/g;
  let match: RegExpExecArray | null;
  while ((match = pattern.exec(text)) && match[0] !== '') {
    lines.push({text: match[1], terminated: match[2] !== undefined});
  }
  return lines;
}

const same = (a: Line, b: Line) => a.text === b.text && a.terminated === b.terminated;

/** The edit script of two line lists (longest common subsequence; env files are small). */
function editScript(a: Line[], b: Line[]): Op[] {
  const lcs: number[][] = Array.from({length: a.length + 1}, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) lcs[i][j] = same(a[i], b[j]) ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  }
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && same(a[i], b[j])) {
      ops.push({kind: ' ', line: a[i++]});
      j++;
    } else if (j < b.length && (i === a.length || lcs[i][j + 1] >= lcs[i + 1][j])) {
      ops.push({kind: '+', line: b[j++]});
    } else {
      ops.push({kind: '-', line: a[i++]});
    }
  }
  // Removals before additions within a run of changes, as diff(1) prints them.
  for (let start = 0; start < ops.length; ) {
    if (ops[start].kind === ' ') {
      start++;
      continue;
    }
    let end = start;
    while (end < ops.length && ops[end].kind !== ' ') end++;
    const run = ops.slice(start, end);
    ops.splice(start, run.length, ...run.filter((op) => op.kind === '-'), ...run.filter((op) => op.kind === '+'));
    start = end;
  }
  return ops;
}

/**
 * A unified diff of two texts (`context` lines around each change), or '' when they are equal.
 * Line endings are not shown; a missing final newline is marked as diff(1) does.
 */
export function unifiedDiff(oldText: string, newText: string, label: string, context = 3): string {
  const ops = editScript(splitLines(oldText), splitLines(newText));
  const changed = ops.map((op, index) => (op.kind === ' ' ? -1 : index)).filter((index) => index >= 0);
  if (changed.length === 0) return '';
  // Group the changes whose context overlaps into hunks.
  const hunks: Array<[number, number]> = [];
  for (const index of changed) {
    const last = hunks.at(-1);
    if (last && index - last[1] <= 2 * context + 1) last[1] = index;
    else hunks.push([index, index]);
  }
  const out = [`--- a/${label}`, `+++ b/${label}`];
  for (const [first, last] of hunks) {
    const from = Math.max(0, first - context);
    const to = Math.min(ops.length - 1, last + context);
    // Line numbers at the start of the hunk.
    let oldLine = 1;
    let newLine = 1;
    for (const op of ops.slice(0, from)) {
      if (op.kind !== '+') oldLine++;
      if (op.kind !== '-') newLine++;
    }
    const slice = ops.slice(from, to + 1);
    const oldCount = slice.filter((op) => op.kind !== '+').length;
    const newCount = slice.filter((op) => op.kind !== '-').length;
    const range = (start: number, count: number) => `${count === 0 ? start - 1 : start}${count === 1 ? '' : `,${count}`}`;
    out.push(`@@ -${range(oldLine, oldCount)} +${range(newLine, newCount)} @@`);
    for (const op of slice) {
      out.push(op.kind + op.line.text);
      if (!op.line.terminated) out.push('\\ No newline at end of file');
    }
  }
  return `${out.join('\n')}\n`;
}
