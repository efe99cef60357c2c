#!/usr/bin/env node
// A load script for the autoscaling example: ramps requests per second up to a peak and back down,
// then stops, so that `skiff get fn autoscaled -w` shows the replicas follow and then scale to zero.
//
//   node examples/autoscaling/load.mjs [--url http://127.0.0.1:8080/autoscaled] [--peak 120] [--seconds 60]
//
// Loopback only; it sends at most peak × seconds requests and ends by itself.
const args = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const url = new URL(arg('--url', 'http://127.0.0.1:8080/autoscaled'));
const peak = Number(arg('--peak', '120'));
const seconds = Number(arg('--seconds', '60'));
if (!['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
  console.error(`load.mjs sends traffic to loopback only, not ${url.hostname}`);
  process.exit(2);
}
if (!(peak > 0 && peak <= 2000 && seconds > 0 && seconds <= 600)) {
  console.error('--peak must be in 1..2000 requests/s and --seconds in 1..600');
  process.exit(2);
}

let ok = 0;
let failed = 0;
const started = Date.now();
for (let s = 0; s < seconds; s++) {
  // A triangle: up for the first half, down for the second.
  const rate = Math.max(1, Math.round(peak * (1 - Math.abs((2 * s) / seconds - 1))));
  const tick = Date.now();
  const pending = [];
  for (let i = 0; i < rate; i++) {
    pending.push(
      new Promise((r) => setTimeout(r, (i * 1000) / rate)).then(() =>
        fetch(url).then(
          async (res) => {
            await res.arrayBuffer();
            if (res.ok) ok++;
            else failed++;
          },
          () => failed++,
        ),
      ),
    );
  }
  await Promise.all(pending);
  process.stdout.write(`${String(s + 1).padStart(3)}s  ${String(rate).padStart(4)} req/s  ok ${ok}  failed ${failed}\n`);
  const left = 1000 - (Date.now() - tick);
  if (left > 0) await new Promise((r) => setTimeout(r, left));
}
console.log(`done in ${Math.round((Date.now() - started) / 1000)} s: ${ok} answered, ${failed} failed; now idle: watch it scale to zero`);
