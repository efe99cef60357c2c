import { describe, expect, it } from 'vitest';

import { ApiError } from '../../src/api/errors.js';
import { applyJsonPatch, decodeJsonPatch, parseJsonPointer } from '../../src/api/patch/json-patch.js';
import { applyStrategicAsMerge } from '../../src/api/patch/strategic-patch.js';

function failure(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error('expected an ApiError');
}

const patch = (doc: unknown, ops: unknown) => applyJsonPatch(doc, decodeJsonPatch(ops));

describe('JSON pointer', () => {
  it('unescapes ~1 to / and ~0 to ~, in that order', () => {
    expect(parseJsonPointer('')).toEqual([]);
    expect(parseJsonPointer('/metadata/annotations/a~1b')).toEqual(['metadata', 'annotations', 'a/b']);
    expect(parseJsonPointer('/x/~01')).toEqual(['x', '~1']);
    expect(parseJsonPointer('/')).toEqual(['']);
  });

  it('refuses a pointer without a leading slash and a bad escape, naming the operation', () => {
    expect(failure(() => patch({}, [{ op: 'add', path: 'a', value: 1 }])).httpStatus).toBe(422);
    const e = failure(() => patch({ a: 1 }, [{ op: 'remove', path: '/a~2' }]));
    expect(e.message).toContain("operation 0 (remove /a~2)");
  });
});

describe('JSON patch (RFC 6902)', () => {
  const doc = { spec: { limits: { memory: '64Mi' }, args: ['a', 'b'] }, metadata: { annotations: { 'x/y': '1' } } };

  it('adds, removes and replaces in objects and arrays, with - for the end', () => {
    const out = patch(doc, [
      { op: 'add', path: '/spec/limits/timeout', value: '5s' },
      { op: 'add', path: '/spec/args/-', value: 'c' },
      { op: 'add', path: '/spec/args/0', value: 'z' },
      { op: 'remove', path: '/metadata/annotations/x~1y' },
      { op: 'replace', path: '/spec/limits/memory', value: '128Mi' },
      { op: 'replace', path: '/spec/args/1', value: 'A' },
    ]);
    expect(out).toEqual({ spec: { limits: { memory: '128Mi', timeout: '5s' }, args: ['z', 'A', 'b', 'c'] }, metadata: { annotations: {} } });
    // The input is never changed, even by a patch that fails half way.
    expect(doc.spec.args).toEqual(['a', 'b']);
    failure(() => patch(doc, [{ op: 'add', path: '/spec/args/-', value: 'c' }, { op: 'remove', path: '/nope' }]));
    expect(doc.spec.args).toEqual(['a', 'b']);
  });

  it('moves and copies, and refuses a move into the value itself', () => {
    expect(patch(doc, [{ op: 'move', from: '/spec/limits', path: '/spec/caps' }])).toMatchObject({ spec: { caps: { memory: '64Mi' } } });
    const copied = patch(doc, [{ op: 'copy', from: '/spec/args', path: '/spec/more' }]) as { spec: { args: string[]; more: string[] } };
    expect(copied.spec.more).toEqual(['a', 'b']);
    expect(copied.spec.more).not.toBe(copied.spec.args);
    expect(failure(() => patch(doc, [{ op: 'move', from: '/spec', path: '/spec/inner' }])).httpStatus).toBe(422);
  });

  it('tests by JSON equality, whatever the member order, and fails with 422 naming the op', () => {
    expect(patch(doc, [{ op: 'test', path: '/spec/limits', value: { memory: '64Mi' } }])).toEqual(doc);
    expect(patch({ a: { x: 1, y: 2 } }, [{ op: 'test', path: '/a', value: { y: 2, x: 1 } }])).toEqual({ a: { x: 1, y: 2 } });
    const e = failure(() => patch(doc, [{ op: 'replace', path: '/spec/limits/memory', value: '1Gi' }, { op: 'test', path: '/spec/limits/memory', value: '64Mi' }]));
    expect(e.httpStatus).toBe(422);
    expect(e.reason).toBe('Invalid');
    expect(e.message).toMatch(/operation 1 \(test \/spec\/limits\/memory\).*test failed/);
    expect(e.details?.causes?.[0]?.field).toBe('/spec/limits/memory');
  });

  it('refuses missing paths, out-of-range and malformed indexes with 422', () => {
    for (const op of [
      { op: 'remove', path: '/spec/nope' },
      { op: 'replace', path: '/spec/nope', value: 1 },
      { op: 'add', path: '/spec/nope/deeper', value: 1 },
      { op: 'add', path: '/spec/args/3', value: 'x' },
      { op: 'remove', path: '/spec/args/2' },
      { op: 'remove', path: '/spec/args/-' },
      { op: 'remove', path: '/spec/args/01' },
      { op: 'copy', from: '/nope', path: '/x' },
    ]) {
      expect(failure(() => patch(doc, [op])).httpStatus, JSON.stringify(op)).toBe(422);
    }
  });

  it('refuses a document that is not a list of well-formed operations with 400', () => {
    for (const bad of [{}, [{ path: '/a' }], [{ op: 'frobnicate', path: '/a' }], [{ op: 'add', path: '/a' }], [{ op: 'move', path: '/a' }], [1]]) {
      expect(failure(() => decodeJsonPatch(bad)).httpStatus, JSON.stringify(bad)).toBe(400);
    }
  });

  it('adds a __proto__ member as data', () => {
    const out = patch({ a: {} }, [{ op: 'add', path: '/a/__proto__', value: { polluted: true } }]) as { a: Record<string, unknown> };
    expect(Object.hasOwn(out.a, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('strategic merge patch, applied as a merge patch', () => {
  it('merges maps, replaces lists whole and deletes with null', () => {
    expect(applyStrategicAsMerge({ spec: { a: 1, b: 2, list: [1, 2] } }, { spec: { a: null, c: 3, list: [3] } })).toEqual({ spec: { b: 2, c: 3, list: [3] } });
  });

  it('honours $patch, $retainKeys and $deleteFromPrimitiveList and ignores $setElementOrder', () => {
    const live = { spec: { limits: { memory: '1', timeout: '2' }, args: ['a', 'b', 'c'], env: { A: '1', B: '2' } } };
    expect(
      applyStrategicAsMerge(live, {
        spec: {
          limits: { $patch: 'replace', memory: '9' },
          '$deleteFromPrimitiveList/args': ['b'],
          '$setElementOrder/args': ['a', 'c'],
          env: { $retainKeys: ['B'], B: '3' },
        },
      }),
    ).toEqual({ spec: { limits: { memory: '9' }, args: ['a', 'c'], env: { B: '3' } } });
    expect(applyStrategicAsMerge(live, { spec: { limits: { $patch: 'delete' } } })).toEqual({ spec: { args: ['a', 'b', 'c'], env: { A: '1', B: '2' } } });
  });

  it('refuses directives it cannot honour instead of storing them', () => {
    expect(failure(() => applyStrategicAsMerge({}, { spec: { dirs: [{ guest: '/a', $patch: 'delete' }] } })).httpStatus).toBe(400);
    expect(failure(() => applyStrategicAsMerge({}, { spec: { $unknown: 1 } })).httpStatus).toBe(400);
  });
});
