import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KeyRing } from './auth.ts';
import type { Billing } from './billing.ts';
import { apiError, rateLimited, StripeFakeError } from './errors.ts';
import type { Faults } from './faults.ts';
import { fingerprint, ParamReader, type Params, parseForm } from './form.ts';
import type { IdempotencyStore } from './idempotency.ts';
import { newId } from './ids.ts';
import type { RateLimiter } from './rate-limit.ts';
import { type FakeSettings, type HandlerContext, matchRoute, type Route } from './router.ts';
import { API_VERSION, type Store } from './store.ts';

// The request pipeline, in the order Stripe applies it: network faults, authentication, routing, rate
// limits, restricted-key permissions, idempotency, then the handler.

export interface RequestLogEntry {
  method: string;
  path: string;
  status: number | 'dropped';
  requestId: string;
  apiKey: string | null;
  idempotencyKey: string | null;
  replayed: boolean;
  params: Params;
  /** Fake time when the request arrived. */
  at: number;
}

export interface ServerDeps {
  store: Store;
  billing: Billing;
  faults: Faults;
  settings: FakeSettings;
  keys: KeyRing;
  limiter: RateLimiter;
  idempotency: IdempotencyStore;
  routes: Route[];
  log: RequestLogEntry[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export function createHandler(deps: ServerDeps) {
  const { store, faults, keys, limiter, idempotency, routes, log } = deps;

  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'http://stripe-fake.invalid');
    const path = url.pathname;
    const requestId = newId('req', 14);
    const idempotencyKey = method === 'POST' ? (header(req, 'idempotency-key') ?? null) : null;
    const entry: RequestLogEntry = {
      method,
      path,
      status: 0,
      requestId,
      apiKey: null,
      idempotencyKey,
      replayed: false,
      params: {},
      at: store.now(),
    };
    log.push(entry);
    // Bounded, so that a long-running standalone fake does not grow without end.
    if (log.length > 20_000) log.splice(0, log.length - 10_000);
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      'Request-Id': requestId,
      'Stripe-Version': header(req, 'stripe-version') ?? API_VERSION,
    };
    if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;

    const respond = async (status: number, body: string, extra: Record<string, string> = {}) => {
      const delay = faults.takeSlow(method, path);
      if (delay > 0) await sleep(delay);
      if (res.destroyed) return;
      entry.status = status;
      res.writeHead(status, { ...headers, ...extra, 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    };
    const drop = () => {
      entry.status = 'dropped';
      req.socket.destroy();
    };
    const errorBody = (e: StripeFakeError) => JSON.stringify({ error: e.body }, null, 2);

    let idemScope: string | null = null;
    try {
      const body = await readBody(req);
      const dropSpec = faults.takeDrop(method, path);
      if (dropSpec && !dropSpec.afterExecute) return drop();
      const failSpec = faults.takeFailure(method, path);
      const injected = failSpec
        ? new StripeFakeError(
            failSpec.status,
            {
              type: failSpec.type ?? (failSpec.status === 429 ? 'invalid_request_error' : 'api_error'),
              ...(failSpec.code || failSpec.status === 429 ? { code: failSpec.code ?? 'rate_limit' } : {}),
              message:
                failSpec.message ??
                (failSpec.status === 429
                  ? rateLimited().message
                  : 'An unknown error occurred (injected fault)'),
            },
            failSpec.headers,
          )
        : undefined;
      if (injected && !failSpec?.afterExecute) throw injected;

      const key = keys.resolve(header(req, 'authorization'));
      entry.apiKey = key.key;
      const matched = matchRoute(routes, method, path);
      if (!matched || 'methodMismatch' in matched) {
        throw new StripeFakeError(404, {
          type: 'invalid_request_error',
          message: `Unrecognized request URL (${method}: ${path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`,
        });
      }
      const { route, params } = matched;
      if (!limiter.take(key.mode, route.rateClass)) throw rateLimited();
      keys.check(key, route.resource, route.access);

      // stripe-node sends GET and DELETE parameters in the query string and POST parameters in the body.
      const raw: Params = { ...parseForm(url.search.slice(1)), ...parseForm(body) };
      entry.params = raw;
      if (idempotencyKey) {
        idemScope = key.mode;
        const found = idempotency.begin(idemScope, idempotencyKey, method, path, fingerprint(raw));
        if (found.kind === 'replay') {
          entry.replayed = true;
          idemScope = null;
          return await respond(found.response.status, found.response.body, {
            'Idempotent-Replayed': 'true',
            'Original-Request': found.response.requestId,
          });
        }
        if (found.kind !== 'new') {
          idemScope = null;
          throw idempotencyConflict(
            found.kind,
            idempotencyKey,
            path,
            found.kind === 'endpoint_mismatch' ? found.path : '',
          );
        }
      }

      const p = new ParamReader(raw);
      const ctx: HandlerContext = {
        store,
        billing: deps.billing,
        faults,
        settings: deps.settings,
        p,
        params,
        request: { id: requestId, idempotencyKey, mode: key.mode },
      };
      store.currentRequest = { id: requestId, idempotencyKey };
      let pending: unknown;
      try {
        pending = route.handle(ctx);
      } finally {
        store.currentRequest = null;
      }
      const result = await pending;
      const expanded = p.expand().reduce((obj, path) => expand(store, obj, path.split('.')), result);
      const text = JSON.stringify(expanded, null, 2);
      if (idemScope && idempotencyKey) {
        idempotency.complete(idemScope, idempotencyKey, { status: 200, body: text, requestId });
        idemScope = null;
      }
      if (dropSpec?.afterExecute) return drop();
      if (injected) throw injected;
      await respond(200, text);
    } catch (err) {
      // Only requests that ran keep their result under the key; a refused one may be retried as new.
      if (idemScope && idempotencyKey) idempotency.abandon(idemScope, idempotencyKey);
      const e =
        err instanceof StripeFakeError ? err : apiError(500, `Stripe fake internal error: ${String(err)}`);
      if (!(err instanceof StripeFakeError)) console.error('[stripe-fake]', err);
      await respond(e.status, errorBody(e), e.headers);
    }
  };
}

function idempotencyConflict(kind: string, key: string, path: string, firstPath: string): StripeFakeError {
  if (kind === 'in_flight') {
    return new StripeFakeError(409, {
      type: 'idempotency_error',
      message: `There is currently another in-progress request using this Stripe-Idempotency-Key ('${key}'). Please try again later.`,
    });
  }
  if (kind === 'endpoint_mismatch') {
    return new StripeFakeError(400, {
      type: 'idempotency_error',
      message: `Keys for idempotent requests can only be used for the same endpoint they were first used for ('${firstPath}' vs '${path}'). Try using a key other than '${key}' if you meant to execute a different request.`,
    });
  }
  return new StripeFakeError(400, {
    type: 'idempotency_error',
    message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`,
  });
}

/** `expand[]`: replaces an id found at the dotted path with the object it names (copies, never the store). */
function expand(store: Store, value: unknown, path: string[]): unknown {
  if (Array.isArray(value)) return value.map((v) => expand(store, v, path));
  if (value === null || typeof value !== 'object' || path.length === 0) return value;
  const [head, ...rest] = path as [string, ...string[]];
  const copy = { ...(value as Record<string, unknown>) };
  let child = copy[head];
  if (typeof child === 'string') child = lookup(store, child) ?? child;
  copy[head] = rest.length === 0 ? child : expand(store, child, rest);
  return copy;
}

function lookup(store: Store, id: string): object | undefined {
  for (const map of [
    store.customers,
    store.products,
    store.prices,
    store.meters,
    store.subscriptions,
    store.invoices,
    store.invoiceItems,
    store.creditNotes,
  ] as Array<Map<string, object>>) {
    const found = map.get(id);
    if (found) return found;
  }
  return undefined;
}
