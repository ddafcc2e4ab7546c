import type { Access, KeyMode, PermissionResource } from './auth.ts';
import type { Billing } from './billing.ts';
import type { Faults } from './faults.ts';
import type { ParamReader } from './form.ts';
import type { RateClass } from './rate-limit.ts';
import type { RequestInfo, Store } from './store.ts';

export interface FakeSettings {
  invoiceGracePeriodSeconds: number;
  autoPay: boolean;
  meterEventValues: 'integer' | 'decimal';
  identifierWindowSeconds: number;
  adjustmentWindowSeconds: number;
  summaryLagSeconds: number;
}

export interface HandlerContext {
  store: Store;
  billing: Billing;
  faults: Faults;
  settings: FakeSettings;
  p: ParamReader;
  params: Record<string, string>;
  request: RequestInfo & { mode: KeyMode };
}

export type Method = 'GET' | 'POST' | 'DELETE';

export interface Route {
  method: Method;
  path: string;
  pattern: RegExp;
  keys: string[];
  resource: PermissionResource;
  access: Access;
  rateClass: RateClass;
  handle: (ctx: HandlerContext) => unknown;
}

export function route(
  method: Method,
  path: string,
  resource: PermissionResource,
  handle: (ctx: HandlerContext) => unknown,
  opts: { rateClass?: RateClass } = {},
): Route {
  const keys: string[] = [];
  const source = path.replace(/:(\w+)/g, (_, key: string) => {
    keys.push(key);
    return '([^/]+)';
  });
  return {
    method,
    path,
    pattern: new RegExp(`^${source}$`),
    keys,
    resource,
    access: method === 'GET' ? 'read' : 'write',
    rateClass: opts.rateClass ?? (method === 'GET' ? 'read' : 'write'),
    handle,
  };
}

export function matchRoute(
  routes: Route[],
  method: string,
  path: string,
): { route: Route; params: Record<string, string> } | { methodMismatch: true } | undefined {
  let pathMatched = false;
  for (const r of routes) {
    const m = r.pattern.exec(path);
    if (!m) continue;
    pathMatched = true;
    if (r.method !== method) continue;
    const params: Record<string, string> = {};
    r.keys.forEach((k, i) => {
      params[k] = decodeURIComponent(m[i + 1] ?? '');
    });
    return { route: r, params };
  }
  return pathMatched ? { methodMismatch: true } : undefined;
}

/** Top-level fields whose values differ, as Stripe reports them in `previous_attributes`. */
export function changedFields(before: object, after: object): Record<string, unknown> | undefined {
  const b = JSON.parse(JSON.stringify(before)) as Record<string, unknown>;
  const a = JSON.parse(JSON.stringify(after)) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(b)) {
    if (JSON.stringify(b[k]) !== JSON.stringify(a[k])) out[k] = b[k] ?? null;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}
