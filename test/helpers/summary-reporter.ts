import type { Reporter } from 'vitest/reporters';

interface TaskLike {
  type: string;
  mode?: string;
  result?: { state?: string };
  tasks?: TaskLike[];
}

/**
 * SummaryReporter prints one plain closing line, `tests: N passed, M failed, K skipped`, after
 * vitest's own summary, so that any tool reading the log can count results without knowing vitest.
 */
export default class SummaryReporter implements Reporter {
  onFinished(files: TaskLike[] = []): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const walk = (t: TaskLike) => {
      if (t.type === 'test') {
        if (t.mode === 'skip' || t.mode === 'todo' || t.result?.state === 'skip') skipped++;
        else if (t.result?.state === 'pass') passed++;
        else if (t.result?.state === 'fail') failed++;
        else skipped++;
      }
      for (const c of t.tasks ?? []) walk(c);
    };
    for (const f of files) {
      // A file that failed to load has no tests but is a failure.
      if (f.result?.state === 'fail' && !(f.tasks ?? []).length) failed++;
      walk(f);
    }
    process.stdout.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
