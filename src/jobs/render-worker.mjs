// Entry of a render thread (src/jobs/render.ts): threads load TypeScript through tsx like the main
// process does, whatever loaded the main thread (the CLI, vitest, the bench).
import { register } from 'tsx/esm/api';

register();
const { renderInWorker } = await import('./render-worker.ts');
export default renderInWorker;
