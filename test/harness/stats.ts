import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Where differential tests append one line per form run; the global teardown sums it. */
export const STATS_FILE = path.join(ROOT, 'build/diff-stats.jsonl');
