import { defineConfig } from 'vitest/config';

/**
 * `npm run test:tools`: the deployment files checked by the tools that read them (promtool from Debian's
 * `prometheus`, systemd-analyze from `systemd`) and `top` in a real terminal (tmux); see test/tools/.
 */
export default defineConfig({
  test: {
    include: ['test/tools/**/*.test.ts'],
    testTimeout: 60_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: 1, minForks: 1 } },
    reporters: ['default'],
  },
});
