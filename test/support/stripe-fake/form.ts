import { invalidParam, invalidRequest, missingParam } from './errors.ts';

// Stripe takes application/x-www-form-urlencoded bodies (and query strings) with bracket nesting:
// `items[0][price]=p&metadata[k]=v`. stripe-node writes arrays with explicit indices.

export type ParamValue = string | Params | ParamValue[];
export interface Params {
  [key: string]: ParamValue;
}

export function parseForm(text: string): Params {
  const root: Params = {};
  for (const [rawKey, value] of new URLSearchParams(text)) {
    const match = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(rawKey);
    if (!match?.[1]) throw invalidRequest(`Invalid parameter name: ${rawKey}`);
    const path = [match[1], ...[...(match[2] ?? '').matchAll(/\[([^[\]]*)\]/g)].map((m) => m[1] ?? '')];
    let node: Params = root;
    for (let i = 0; i < path.length - 1; i++) {
      const seg = path[i] as string;
      const next = node[seg];
      if (next === undefined || typeof next === 'string') {
        const created: Params = {};
        node[seg] = created;
        node = created;
      } else {
        node = next as Params;
      }
    }
    const last = path[path.length - 1] as string;
    // `a[]=x` appends, as qs does.
    node[last === '' ? String(Object.keys(node).length) : last] = value;
  }
  return arraysFromIndexedObjects(root) as Params;
}

function arraysFromIndexedObjects(value: ParamValue): ParamValue {
  if (typeof value === 'string' || Array.isArray(value)) return value;
  const keys = Object.keys(value);
  const converted: Params = {};
  for (const k of keys) converted[k] = arraysFromIndexedObjects(value[k] as ParamValue);
  if (keys.length > 0 && keys.every((k) => /^\d+$/.test(k))) {
    return keys
      .map(Number)
      .sort((a, b) => a - b)
      .map((k) => converted[String(k)] as ParamValue);
  }
  return converted;
}

/** Canonical text of the parameters, so an idempotent retry compares equal whatever its key order. */
export function fingerprint(params: Params): string {
  const canon = (v: ParamValue): unknown => {
    if (typeof v === 'string') return v;
    if (Array.isArray(v)) return v.map(canon);
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, canon(v[k] as ParamValue)]),
    );
  };
  return JSON.stringify(canon(params));
}

/**
 * Typed reads of request parameters, raising Stripe's errors for missing, malformed and unknown ones.
 * Unknown parameters are refused because Stripe refuses them: a client bug should fail here too.
 */
export class ParamReader {
  constructor(
    readonly raw: Params,
    private readonly prefix = '',
  ) {}

  private name(key: string) {
    return this.prefix ? `${this.prefix}[${key}]` : key;
  }

  only(...allowed: string[]): this {
    for (const key of Object.keys(this.raw)) {
      if (key !== 'expand' && !allowed.includes(key)) {
        throw invalidRequest(`Received unknown parameter: ${this.name(key)}`, {
          code: 'parameter_unknown',
          param: this.name(key),
        });
      }
    }
    return this;
  }

  has(key: string): boolean {
    return this.raw[key] !== undefined;
  }

  str(key: string): string | undefined {
    const v = this.raw[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw invalidParam(this.name(key), `Invalid string: ${this.name(key)}`);
    return v;
  }

  reqStr(key: string): string {
    const v = this.str(key);
    if (v === undefined || v === '') throw missingParam(this.name(key));
    return v;
  }

  int(key: string): number | undefined {
    const v = this.str(key);
    if (v === undefined || v === '') return undefined;
    if (!/^-?\d+$/.test(v)) {
      throw invalidRequest(`Invalid integer: ${v}`, {
        code: 'parameter_invalid_integer',
        param: this.name(key),
      });
    }
    return Number(v);
  }

  reqInt(key: string): number {
    const v = this.int(key);
    if (v === undefined) throw missingParam(this.name(key));
    return v;
  }

  bool(key: string): boolean | undefined {
    const v = this.str(key);
    if (v === undefined || v === '') return undefined;
    if (v !== 'true' && v !== 'false') throw invalidParam(this.name(key), `Invalid boolean: ${v}`);
    return v === 'true';
  }

  enumOf<T extends string>(key: string, values: readonly T[]): T | undefined {
    const v = this.str(key);
    if (v === undefined) return undefined;
    if (!(values as readonly string[]).includes(v)) {
      throw invalidParam(this.name(key), `Invalid ${this.name(key)}: must be one of ${values.join(', ')}`);
    }
    return v as T;
  }

  obj(key: string): ParamReader | undefined {
    const v = this.raw[key];
    if (v === undefined) return undefined;
    if (typeof v === 'string' || Array.isArray(v)) {
      if (v === '') return new ParamReader({}, this.name(key));
      throw invalidParam(this.name(key), `Invalid object: ${this.name(key)}`);
    }
    return new ParamReader(v, this.name(key));
  }

  reqObj(key: string): ParamReader {
    const v = this.obj(key);
    if (!v) throw missingParam(this.name(key));
    return v;
  }

  arr(key: string): ParamReader[] | undefined {
    const v = this.raw[key];
    if (v === undefined) return undefined;
    if (v === '') return [];
    if (!Array.isArray(v)) throw invalidParam(this.name(key), `Invalid array: ${this.name(key)}`);
    return v.map((item, i) => {
      if (typeof item === 'string' || Array.isArray(item)) {
        throw invalidParam(`${this.name(key)}[${i}]`, `Invalid object: ${this.name(key)}[${i}]`);
      }
      return new ParamReader(item, `${this.name(key)}[${i}]`);
    });
  }

  strArr(key: string): string[] | undefined {
    const v = this.raw[key];
    if (v === undefined) return undefined;
    if (v === '') return [];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
      throw invalidParam(this.name(key), `Invalid array: ${this.name(key)}`);
    }
    return v as string[];
  }

  /** A flat string map such as `payload[...]`. */
  strMap(key: string): Record<string, string> | undefined {
    const v = this.obj(key);
    if (!v) return undefined;
    const out: Record<string, string> = {};
    for (const [k, val] of Object.entries(v.raw)) {
      if (typeof val !== 'string')
        throw invalidParam(`${v.prefix}[${k}]`, `Invalid string: ${v.prefix}[${k}]`);
      out[k] = val;
    }
    return out;
  }

  /**
   * Stripe's metadata update rule: keys merge into the existing map, an empty value deletes the key,
   * and `metadata=` (empty) clears everything.
   */
  metadata(existing: Record<string, string> = {}): Record<string, string> {
    const v = this.raw.metadata;
    if (v === undefined) return existing;
    if (v === '') return {};
    const updates = this.strMap('metadata') ?? {};
    const next = { ...existing };
    for (const [k, val] of Object.entries(updates)) {
      if (val === '') delete next[k];
      else next[k] = val;
    }
    if (Object.keys(next).length > 50) throw invalidParam('metadata', 'Metadata can have at most 50 keys.');
    return next;
  }

  expand(): string[] {
    return this.strArr('expand') ?? [];
  }
}
