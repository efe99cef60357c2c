// A stand-in for Skiff in the vm tests: starts one VM replica, prints QEMU's PID, then waits to be killed.
import { QemuHandler } from '../../src/workloads/vm/index.js';

import { vmSpec } from './vm-fixture.js';

const [cacheDir, rootfs] = process.argv.slice(2) as [string, string];
const handler = new QemuHandler({ cacheDir });
const { spec } = vmSpec(rootfs, ['/bin/busybox', 'httpd', '-f', '-p', '8080', '-h', '/www']);
const replica = await handler.start(spec);
process.stdout.write(JSON.stringify({ pid: replica.pid, dir: spec.dir }) + '\n');
setInterval(() => undefined, 60_000);
