import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { HostFs } from '../../../src/runtime/fs/host-fs.js';
import { MemFs } from '../../../src/runtime/fs/mem-fs.js';
import type { Mount } from '../../../src/runtime/wasi/fd-table.js';

/** BackendCase builds a fresh mount of one backend kind for the shared suite. */
export interface BackendCase {
  name: string;
  make(readOnly?: boolean): { mount: Mount; hostDir?: string; cleanup(): void };
}

/** backendCases: every file backend runs the same WASI filesystem suite. */
export const backendCases: BackendCase[] = [
  {
    name: 'memfs',
    make: (readOnly = false) => ({ mount: { guest: '/sandbox', backend: new MemFs(), readOnly }, cleanup: () => {} }),
  },
  {
    name: 'hostfs',
    make: (readOnly = false) => {
      const dir = mkdtempSync(join(tmpdir(), 'skiff-wasi-'));
      return {
        mount: { guest: '/sandbox', backend: new HostFs(dir, readOnly), readOnly },
        hostDir: dir,
        cleanup: () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  },
];
