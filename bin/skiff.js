#!/usr/bin/env -S node --no-memory-reducer
// Entry point: runs the compiled CLI. `npm run build` produces dist/.
//
// --no-memory-reducer: V8's memory reducer runs full, heap-shrinking collections once the process
// has been idle for a few seconds. Those drop the object shapes that the streams and events code in
// Node's HTTP server had learnt, and when traffic returns those paths stay on their slow, generic
// form: the demo under load served ~8% fewer requests/s after 14 s idle than right after start
// (bench/core.ts). A server that idles between bursts is the normal case, so the gateway's process
// keeps its heap instead; ordinary collections still run and free memory as before.
import { runAsProcess } from '../dist/cli/main.js';

void runAsProcess(process.argv);
