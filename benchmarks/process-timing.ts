/** What bench:call's scripts share: the rounds flag, medians, and a ratio judged against its goal and floor. */

/** `--rounds N` (3 to 30), or `fallback`. */
export function roundsArgument(fallback: number): number {
  const at = process.argv.indexOf('--rounds');
  return Math.min(30, Math.max(3, Number(at === -1 ? fallback : process.argv[at + 1]) || fallback));
}

export const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

export function verdict(what: string, ratio: number, goal: number, floor: number): string {
  const judged = ratio <= goal ? 'goal met' : ratio <= floor ? 'goal NOT met (within the floor)' : 'floor NOT met';
  return `ratio ${what}: ${ratio.toFixed(2)} (goal ${goal}, floor ${floor}): ${judged}`;
}
