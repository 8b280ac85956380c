import type {ProgressObserver, ProgressSample} from './engine.js';

const REDRAW_MS = 250;
const BAR_WIDTH = 24;

const count = new Intl.NumberFormat('en-US', {maximumFractionDigits: 0});

function render(label: string, sample: ProgressSample): string {
  const done = Math.min(1, sample.elapsedMs / sample.totalMs);
  const filled = Math.round(done * BAR_WIDTH);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`;
  const clock = `${(sample.elapsedMs / 1000).toFixed(1)}s / ${(sample.totalMs / 1000).toFixed(1)}s`;
  let counts = '';
  if (sample.phase === 'warm-up') counts = 'warming up';
  else if (sample.requests !== undefined) {
    const rate = sample.measuredMs ? (sample.requests / sample.measuredMs) * 1000 : 0;
    counts = `${count.format(sample.requests)} answers, ${count.format(rate)}/s${sample.errors ? `, ${count.format(sample.errors)} errors` : ''}`;
  }
  return `${label} ${bar} ${clock} ${counts}`;
}

/** A live bar on a terminal (stderr), redrawn in place and cleared when the run ends. */
export function terminalProgress(stream: NodeJS.WriteStream): ProgressObserver {
  let timer: NodeJS.Timeout | undefined;
  return {
    runStarted(label, sample) {
      const draw = () => stream.write(`\r${render(label, sample()).slice(0, (stream.columns || 80) - 1)}\x1b[K`);
      clearInterval(timer);
      timer = setInterval(draw, REDRAW_MS);
      draw();
    },
    runEnded() {
      if (timer === undefined) return;
      clearInterval(timer);
      timer = undefined;
      stream.write('\r\x1b[K');
    },
  };
}
