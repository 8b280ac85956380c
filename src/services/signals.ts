/** Set by `tacos up` on the services it starts in the foreground: their stdin is a pipe from it. */
export const WATCH_PARENT_ENV = 'TACOS_WATCH_PARENT';

const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;
let absorbingRepeats = false;

/**
 * Resolves with the first SIGINT or SIGTERM: a server's cue to stop cleanly. Later ones are
 * absorbed: the stop under way is bounded, and a signal sent again (a second `kill`, an impatient
 * supervisor) must not kill the process halfway, with exit 143 and its connections left open. Under
 * `tacos up` in the foreground it also resolves when stdin closes, which is how a service learns that
 * `up` died (even by SIGKILL): the pipe's other end is gone.
 */
export function waitForStopSignal(): Promise<NodeJS.Signals | 'parent-gone'> {
  const watchParent = process.env[WATCH_PARENT_ENV] === '1';
  return new Promise<NodeJS.Signals | 'parent-gone'>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      for (const each of STOP_SIGNALS) process.off(each, stop);
      if (!absorbingRepeats) for (const each of STOP_SIGNALS) process.on(each, () => undefined);
      absorbingRepeats = true;
      resolve(signal);
    };
    for (const each of STOP_SIGNALS) process.on(each, stop);
    if (watchParent) {
      process.stdin.on('data', () => undefined);
      process.stdin.once('close', () => resolve('parent-gone'));
      process.stdin.once('end', () => resolve('parent-gone'));
    }
  }).finally(() => {
    // An open stdin would keep the process alive once the server has stopped.
    if (watchParent) process.stdin.destroy();
  });
}
