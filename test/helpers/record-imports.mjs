// Loaded with `node --import` by tests that check which packages a command loads: every module URL
// the process resolves is appended, one a line, to the file named by SKIFF_IMPORT_LOG.
import { register } from 'node:module';

if (process.env.SKIFF_IMPORT_LOG) register('./record-imports-hooks.mjs', import.meta.url, { data: { file: process.env.SKIFF_IMPORT_LOG } });
