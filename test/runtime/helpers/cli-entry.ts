// Runs the Skiff CLI from source (for tests that spawn `skiff` as a process).
import { main } from '../../../src/cli/main.js';

main(process.argv).then((code) => {
  process.exitCode = code;
});
