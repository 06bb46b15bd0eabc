import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    pool: 'forks',
    // Two cores: two test files at a time keeps PostgreSQL and the SMTP sinks responsive.
    maxWorkers: 2,
    // Generous: several tests spawn CLI processes (tsx start-up costs seconds on a loaded 2-core machine).
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
