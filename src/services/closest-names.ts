/** Up to five names, closest first: those containing the text, then by edit distance of their tail. */
export function closestNames(names: string[], wanted: string): string[] {
  const lower = wanted.toLowerCase();
  const segments = lower.split('.').length;
  const score = (name: string) => {
    const full = name.toLowerCase();
    // Compare with as many trailing segments as were typed, so a short name is not penalised by its package.
    const tail = full.split('.').slice(-segments).join('.');
    return (full.includes(lower) ? -1000 : 0) + Math.min(distance(lower, tail), distance(lower, full));
  };
  return names
    .map((name) => ({name, score: score(name)}))
    .sort((a, b) => a.score - b.score || a.name.localeCompare(b.name))
    .slice(0, 5)
    .map((entry) => entry.name);
}

/** Levenshtein distance. */
function distance(a: string, b: string): number {
  const row = Array.from({length: b.length + 1}, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length];
}
