import type Stripe from 'stripe';
import { invalidParam, noSuch } from '../errors.ts';
import { newId, randomToken } from '../ids.ts';
import { newestFirst, paginate } from '../list.ts';
import { type HandlerContext, type Route, route } from '../router.ts';
import type { Store } from '../store.ts';

function requireEndpoint(store: Store, id: string): Stripe.WebhookEndpoint {
  const endpoint = store.webhookEndpoints.get(id);
  if (!endpoint) throw noSuch('webhook_endpoint', id);
  return endpoint;
}

function checkUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('scheme');
    return url;
  } catch {
    throw invalidParam('url', `Invalid URL: ${url}`);
  }
}

function enabledEvents(ctx: HandlerContext): string[] {
  const events = ctx.p.strArr('enabled_events') ?? [];
  if (events.length === 0)
    throw invalidParam('enabled_events', 'enabled_events must contain at least one event.');
  return events;
}

/** Stripe shows the signing secret only in the response that creates the endpoint. */
function withoutSecret(endpoint: Stripe.WebhookEndpoint): Stripe.WebhookEndpoint {
  const { secret: _secret, ...rest } = endpoint;
  return rest;
}

function create(ctx: HandlerContext): Stripe.WebhookEndpoint {
  const { store, p } = ctx;
  p.only('url', 'enabled_events', 'api_version', 'description', 'metadata', 'connect');
  const secret = `whsec_${randomToken(32)}`;
  const endpoint: Stripe.WebhookEndpoint = {
    id: newId('we', 24),
    object: 'webhook_endpoint',
    api_version: p.str('api_version') ?? null,
    application: null,
    created: store.now(),
    description: p.str('description') ?? null,
    enabled_events: enabledEvents(ctx),
    livemode: false,
    metadata: p.metadata(),
    status: 'enabled',
    url: checkUrl(p.reqStr('url')),
  };
  store.webhookEndpoints.set(endpoint.id, endpoint);
  store.webhookSecrets.set(endpoint.id, secret);
  return { ...endpoint, secret };
}

function update(ctx: HandlerContext): Stripe.WebhookEndpoint {
  const { store, p, params } = ctx;
  p.only('url', 'enabled_events', 'description', 'metadata', 'disabled');
  const endpoint = requireEndpoint(store, params.id as string);
  if (p.has('url')) endpoint.url = checkUrl(p.reqStr('url'));
  if (p.has('enabled_events')) endpoint.enabled_events = enabledEvents(ctx);
  if (p.has('description')) endpoint.description = p.str('description') || null;
  if (p.has('disabled')) endpoint.status = p.bool('disabled') ? 'disabled' : 'enabled';
  endpoint.metadata = p.metadata(endpoint.metadata);
  return withoutSecret(endpoint);
}

function remove({ store, params }: HandlerContext): Stripe.DeletedWebhookEndpoint {
  const endpoint = requireEndpoint(store, params.id as string);
  store.webhookEndpoints.delete(endpoint.id);
  return { id: endpoint.id, object: 'webhook_endpoint', deleted: true };
}

function list({ store, p }: HandlerContext) {
  p.only('limit', 'starting_after', 'ending_before');
  return paginate(
    newestFirst(store.webhookEndpoints.values()).map(withoutSecret),
    p,
    '/v1/webhook_endpoints',
  );
}

export const webhookEndpointRoutes: Route[] = [
  route('POST', '/v1/webhook_endpoints', 'webhook_endpoints', create),
  route('GET', '/v1/webhook_endpoints', 'webhook_endpoints', list),
  route('GET', '/v1/webhook_endpoints/:id', 'webhook_endpoints', ({ store, params }) =>
    withoutSecret(requireEndpoint(store, params.id as string)),
  ),
  route('POST', '/v1/webhook_endpoints/:id', 'webhook_endpoints', update),
  route('DELETE', '/v1/webhook_endpoints/:id', 'webhook_endpoints', remove),
];
