/** Set by `tacos up` on the services it starts in the foreground: their stdin is a pipe from it. */
export const WATCH_PARENT_ENV = 'TACOS_WATCH_PARENT';

/**
 * Resolves with the first SIGINT or SIGTERM: a server's cue to stop cleanly. Under `tacos up` in
 * the foreground it also resolves when stdin closes, which is how a service learns that `up` died
 * (even by SIGKILL): the pipe's other end is gone.
 */
export function waitForStopSignal(): Promise<NodeJS.Signals | 'parent-gone'> {
  const watchParent = process.env[WATCH_PARENT_ENV] === '1';
  return new Promise<NodeJS.Signals | 'parent-gone'>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
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
