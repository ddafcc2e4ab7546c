import type Stripe from 'stripe';
import { noSuch } from '../errors.ts';
import { newestFirst, paginate } from '../list.ts';
import { type HandlerContext, type Route, route } from '../router.ts';

function retrieve({ store, params }: HandlerContext): Stripe.Event {
  const event = store.events.get(params.id as string);
  if (!event) throw noSuch('event', params.id as string);
  return event;
}

function list({ store, p }: HandlerContext) {
  p.only('limit', 'starting_after', 'ending_before', 'type', 'types', 'delivery_success');
  const type = p.str('type');
  const types = p.strArr('types');
  // `type` takes a trailing wildcard, as in `customer.subscription.*`.
  const matchType = (t: string) =>
    (!type || (type.endsWith('*') ? t.startsWith(type.slice(0, -1)) : t === type)) &&
    (!types || types.includes(t));
  return paginate(
    newestFirst(store.events.values()).filter((e) => matchType(e.type)),
    p,
    '/v1/events',
  );
}

export const eventRoutes: Route[] = [
  route('GET', '/v1/events', 'events', list),
  route('GET', '/v1/events/:id', 'events', retrieve),
];

export const accountRoutes: Route[] = [route('GET', '/v1/account', 'account', ({ store }) => store.account)];
