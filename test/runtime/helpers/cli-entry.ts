// Runs the Skiff CLI from source (for tests that spawn `skiff` as a process).
import { runAsProcess } from '../../../src/cli/main.js';

void runAsProcess(process.argv);
