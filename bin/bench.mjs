#!/usr/bin/env node
// npm run bench [-- scenario ...]: runs bench/scenarios/*.ts (all, or the named ones) and prints figures.
import { register } from 'tsx/esm/api';

register();
await import('../bench/run.ts');
