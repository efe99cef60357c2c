import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { FUEL_EXPORT, meter } from '../../src/runtime/meter.js';
import { Wasm } from '../../src/runtime/wasm-api.js';
import { wat } from '../helpers/wat.js';

type Exports = Record<string, unknown> & { [FUEL_EXPORT]: { value: number } };

const FEATURES = { simd: true, exceptions: true, bulk_memory: true, reference_types: true, tail_call: true, sat_float_to_int: true, sign_extension: true, multi_value: true };

const wasm = (text: string) => wat(text, FEATURES);

async function instantiate(bytes: Uint8Array, imports: Record<string, Record<string, unknown>> = {}): Promise<Exports> {
  const metered = meter(bytes, 1_000_000);
  expect(metered).not.toBeNull();
  return new Wasm.Instance(await Wasm.compile(metered!), imports).exports as Exports;
}

describe('fuel metering (binary rewrite)', () => {
  it('charges one unit per loop iteration and per call, and traps when the fuel is gone', async () => {
    const ex = await instantiate(await wasm(`(module
      (func $count (export "count") (param $n i32) (result i32) (local $i i32)
        (block $done (loop $again
          (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $again)))
        (local.get $i))
      (func (export "forever") (loop $l (br $l))))`));
    const fuel = ex[FUEL_EXPORT];
    const count = ex.count as (n: number) => number;
    fuel.value = 10_000;
    expect(count(1000)).toBe(1000);
    // One unit on entry, one per loop head (1,001 heads for 1,000 iterations plus the exit test).
    expect(10_000 - fuel.value).toBe(1 + 1001);
    fuel.value = 500;
    expect(() => count(1000)).toThrow(Wasm.RuntimeError);
    expect(fuel.value).toBe(0);
    fuel.value = 100_000;
    expect(() => (ex.forever as () => void)()).toThrow(Wasm.RuntimeError);
    expect(fuel.value).toBe(0);
  });

  it('bounds recursion that has no loop at all', async () => {
    const ex = await instantiate(await wasm(`(module
      (func $fib (export "fib") (param $n i32) (result i32)
        (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
          (then (local.get $n))
          (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1))) (call $fib (i32.sub (local.get $n) (i32.const 2))))))))`));
    const fib = ex.fib as (n: number) => number;
    ex[FUEL_EXPORT].value = 1_000_000;
    expect(fib(20)).toBe(6765);
    ex[FUEL_EXPORT].value = 1_000_000;
    expect(() => fib(40)).toThrow(Wasm.RuntimeError);
  });

  it('keeps every other instruction intact: SIMD, bulk memory, tables, exceptions, tail calls, globals', async () => {
    const ex = await instantiate(await wasm(`(module
      (type $t (func (param i32) (result i32)))
      (global $g (mut i32) (i32.const 7))
      (global (export "k") i64 (i64.const -5))
      (memory (export "memory") 1)
      (table 2 funcref)
      (elem (i32.const 0) $double $inc)
      (tag $oops (param i32))
      (data $d "\\01\\02\\03\\04")
      (func $double (type $t) (i32.mul (local.get 0) (i32.const 2)))
      (func $inc (type $t) (i32.add (local.get 0) (i32.const 1)))
      (func $tail (param i32) (result i32) (return_call $double (local.get 0)))
      (func (export "run") (result i32) (local $acc i32) (local $v v128)
        (memory.init $d (i32.const 100) (i32.const 0) (i32.const 4))
        (memory.copy (i32.const 200) (i32.const 100) (i32.const 4))
        (memory.fill (i32.const 300) (i32.const 9) (i32.const 3))
        (local.set $v (v128.load offset=200 align=1 (i32.const 0)))
        (local.set $v (i8x16.add (local.get $v) (v128.const i32x4 1 1 1 1)))
        (local.set $acc (i32.add (i8x16.extract_lane_u 0 (local.get $v)) (i32.load8_u (i32.const 302))))
        (local.set $acc (i32.add (local.get $acc) (call_indirect (type $t) (i32.const 5) (i32.const 0))))
        (local.set $acc (i32.add (local.get $acc) (call $tail (i32.const 3))))
        (block $a (block $b (block $c (br_table $a $b $c (i32.const 1))) (unreachable)) (local.set $acc (i32.add (local.get $acc) (i32.const 100))))
        (global.set $g (i32.add (global.get $g) (i32.const 1)))
        (local.set $acc (i32.add (local.get $acc) (global.get $g)))
        (local.set $acc (i32.add (local.get $acc) (i32.trunc_sat_f32_s (f32.const 2.5))))
        (try (do (throw $oops (i32.const 40))) (catch $oops local.get $acc i32.add local.set $acc))
        (local.get $acc)))`));
    ex[FUEL_EXPORT].value = 1000;
    // 2 (v128 lane 0: 1+1) + 9 + 10 + 6 + 100 + 8 + 2 + 40
    expect((ex.run as () => number)()).toBe(177);
    expect((ex.k as { value: bigint }).value).toBe(-5n);
  });

  it('charges bulk memory operations by their length, keeping params and locals where they were', async () => {
    const ex = await instantiate(await wasm(`(module
      (memory (export "memory") 2)
      (func (export "fill") (param $times i32) (param $len i32) (result i32) (local $i i32) (local $x i64)
        (local.set $x (i64.const 3))
        (block $done (loop $l
          (br_if $done (i32.ge_u (local.get $i) (local.get $times)))
          (memory.fill (i32.const 0) (i32.const 7) (local.get $len))
          (memory.copy (i32.const 65536) (i32.const 0) (local.get $len))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $l)))
        (i32.add (i32.add (local.get $i) (i32.wrap_i64 (local.get $x))) (i32.load8_u (i32.const 65536)))))`));
    const fill = ex.fill as (times: number, len: number) => number;
    const fuel = ex[FUEL_EXPORT];
    fuel.value = 1_000_000;
    expect(fill(10, 1600)).toBe(10 + 3 + 7);
    // Entry + 11 loop heads + 10 × (1600/16 for the fill + 1600/16 for the copy).
    expect(1_000_000 - fuel.value).toBe(1 + 11 + 10 * 200);
    // 64 KiB twice per iteration is 8,192 units: 1,000,000 units run out after 122 iterations.
    fuel.value = 1_000_000;
    expect(() => fill(1_000_000, 65536)).toThrow(Wasm.RuntimeError);
    expect(fuel.value).toBeLessThan(0);
  });

  it('charges memory.grow by the bytes it asks for, and a grow far past any limit cannot add fuel', async () => {
    const ex = await instantiate(await wasm(`(module
      (memory (export "memory") 1 1000)
      (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))`));
    const grow = ex.grow as (pages: number) => number;
    const fuel = ex[FUEL_EXPORT];
    fuel.value = 1_000_000;
    expect(grow(10)).toBe(1);
    // Entry, then 10 pages of 64 KiB at 16 bytes a unit.
    expect(1_000_000 - fuel.value).toBe(1 + 10 * 4096);
    fuel.value = 1_000_000;
    expect(() => grow(300)).toThrow(Wasm.RuntimeError);
    fuel.value = 1_000_000;
    expect(() => grow(-1)).toThrow(Wasm.RuntimeError);
    expect(fuel.value).toBeLessThan(0);
  });

  it('meters a module that has no global or export section, with its start function charged too', async () => {
    const bytes = await wasm(`(module (func $s (loop $l (br $l))) (start $s))`);
    const metered = meter(bytes, 1000)!;
    const looping = await Wasm.compile(metered);
    expect(() => new Wasm.Instance(looping)).toThrow(Wasm.RuntimeError);
    const instance = new Wasm.Instance(await Wasm.compile(meter(await wasm(`(module (func $s (nop)) (start $s))`), 1000)!));
    expect((instance.exports[FUEL_EXPORT] as { value: number }).value).toBe(999);
  });

  it('meters the demo function and real compiler output without changing what they print', async () => {
    const hello = readFileSync(new URL('../../examples/hello/hello.wasm', import.meta.url));
    const metered = meter(hello, 1_000_000)!;
    expect(Wasm.validate(metered)).toBe(true);
    expect(metered.length).toBeGreaterThan(hello.length);
  });

  it('declines instructions it does not know instead of guessing their length', async () => {
    const bytes = await wasm(`(module (func (export "f") (nop)))`);
    const i = bytes.lastIndexOf(0x01); // the nop
    const patched = Uint8Array.from(bytes);
    patched[i] = 0xfb; // a GC-proposal prefix the meter does not decode
    expect(meter(patched, 10)).toBeNull();
  });
});
