import {defineConfig} from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Files start their own redis-server and servers on free ports; two cores, so two at a time.
    maxWorkers: 2,
    pool: 'forks',
  },
});
