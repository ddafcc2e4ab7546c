import { describe, expect, it } from 'vitest';
import { canonicalPath } from './meter.ts';

describe('canonicalPath', () => {
  it('maps JSONPath spellings onto the paths the sink stores', () => {
    expect(canonicalPath('$.usage.input_tokens')).toBe('$.usage.input_tokens');
    expect(canonicalPath("$['usage']['input_tokens']")).toBe('$.usage.input_tokens');
    expect(canonicalPath('$["odd key"].x')).toBe("$['odd key'].x");
    expect(canonicalPath("$['it\\'s']")).toBe("$['it\\'s']");
    expect(canonicalPath('$.items[2].n')).toBe('$.items[2].n');
  });

  it('refuses paths that select several values or none', () => {
    for (const path of ['$', 'usage.tokens', '$..tokens', '$.items[*]', '$.a[?(@.b)]', '$.', '$.a b']) {
      expect(canonicalPath(path), path).toBeNull();
    }
  });
});
