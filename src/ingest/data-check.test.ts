import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { flattenData } from '../events/event.ts';
import { parseJson } from '../events/json.ts';
import { dataProblem } from './data-check.ts';

const roomy = { maxDepth: 1000, maxLeaves: 1e9, maxPathBytes: 1e12 };

describe('dataProblem', () => {
  it('bounds exactly what flattenData would produce: leaves and UTF-8 bytes of paths', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ unit: 'binary' }), fc.jsonValue()), (generated) => {
        const text = JSON.stringify(generated);
        fc.pre(!text.includes('"__proto__":') && text.isWellFormed());
        // Numbers in the countable range; the walk refuses others before it counts.
        const data = JSON.parse(JSON.stringify(generated, (_, v) => (typeof v === 'number' ? v % 1e15 : v)));
        const flat = flattenData(data as Record<string, unknown>);
        const bytes = flat.paths.reduce((sum, path) => sum + Buffer.byteLength(path), 0);
        const leaves = flat.paths.length;
        const limits = (over: Partial<typeof roomy>) => ({ ...roomy, ...over });
        expect(dataProblem(data, limits({ maxLeaves: leaves, maxPathBytes: bytes }))).toBeNull();
        if (leaves > 0) {
          expect(dataProblem(data, limits({ maxLeaves: leaves - 1 }))?.message).toContain(
            `holds ${leaves} values`,
          );
          expect(dataProblem(data, limits({ maxPathBytes: bytes - 1 }))?.message).toContain(
            `take ${bytes} bytes`,
          );
        }
      }),
      { numRuns: 500 },
    );
  });

  it('names an uncountable number by its path, and counts those in range', () => {
    const problem = dataProblem(parseJson('{"a":[1,{"b c":1e400}]}') as Record<string, unknown>, roomy);
    expect(problem).toEqual({
      field: "data.$.a[1]['b c']",
      message: expect.stringMatching(/1e400.*\|x\| < 10\^18/),
    });
    for (const ok of ['999999999999999999', '-999999999999999999.999999999', '1e-400', '0.5e1']) {
      expect(dataProblem(parseJson(`{"n":${ok}}`) as Record<string, unknown>, roomy), ok).toBeNull();
    }
    for (const bad of ['1e18', '-1000000000000000000', '999999999999999999.9999999995', '1E+400']) {
      expect(dataProblem(parseJson(`{"n":${bad}}`) as Record<string, unknown>, roomy)?.field, bad).toBe(
        'data.$.n',
      );
    }
  });

  it('counts depth from data itself and stops walking past the limit', () => {
    const nested = (levels: number) => JSON.parse(`${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`);
    expect(dataProblem(nested(3), { ...roomy, maxDepth: 3 })).toBeNull();
    expect(dataProblem(nested(4), { ...roomy, maxDepth: 3 })).toEqual({
      field: 'data',
      message: 'data is nested more than 3 levels deep; the limit is 3',
    });
    // A million levels: JSON.parse reads them; a recursive walk would overflow the stack.
    const deep = { a: JSON.parse(`${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`) };
    expect(dataProblem(deep, { ...roomy, maxDepth: 32 })?.message).toMatch(/more than 32 levels/);
  });

  it('sums ~150 MB of paths of a hostile event in milliseconds, without building them', () => {
    let data: unknown = Array.from({ length: 5000 }, (_, i) => i);
    for (let i = 0; i < 30; i += 1) data = { [`${i}`.padEnd(1000, 'k')]: data };
    const started = performance.now();
    const problem = dataProblem(data as Record<string, unknown>, { ...roomy, maxPathBytes: 2 ** 21 });
    expect(performance.now() - started).toBeLessThan(200);
    expect(problem?.message).toMatch(/take 15\d{7} bytes/);
  });

  it('refuses "__proto__" keys and unpaired surrogates in keys and values', () => {
    expect(dataProblem(JSON.parse('{"x":{"__proto__":1}}'), roomy)?.message).toMatch(/__proto__/);
    expect(dataProblem({ a: ['\ud800'] }, roomy)?.message).toBe(
      'data holds an unpaired UTF-16 surrogate at $.a[0]',
    );
    expect(dataProblem({ a: { '\udc00': 1 } }, roomy)?.message).toMatch(/key with an unpaired.*in \$\.a$/);
  });
});
