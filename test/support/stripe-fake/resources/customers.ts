import type Stripe from 'stripe';
import { invalidRequest, noSuch } from '../errors.ts';
import { newId } from '../ids.ts';
import { newestFirst, paginate } from '../list.ts';
import { changedFields, type HandlerContext, type Route, route } from '../router.ts';
import { type Store, snapshot } from '../store.ts';

export function requireCustomer(store: Store, id: string, param?: string): Stripe.Customer {
  const customer = store.customers.get(id);
  if (!customer) throw noSuch('customer', id, param);
  return customer;
}

const FIELDS = ['name', 'email', 'description', 'phone', 'metadata', 'balance', 'preferred_locales'];

function create({ store, p }: HandlerContext): Stripe.Customer {
  p.only(...FIELDS, 'invoice_prefix');
  const customer: Stripe.Customer = {
    id: newId('cus', 14),
    object: 'customer',
    address: null,
    balance: p.int('balance') ?? 0,
    created: store.now(),
    currency: null,
    default_source: null,
    delinquent: false,
    description: p.str('description') ?? null,
    discount: null,
    email: p.str('email') ?? null,
    invoice_prefix: p.str('invoice_prefix') ?? store.newInvoicePrefix(),
    invoice_settings: {
      custom_fields: null,
      default_payment_method: null,
      footer: null,
      rendering_options: null,
    },
    livemode: false,
    metadata: p.metadata(),
    name: p.str('name') ?? null,
    next_invoice_sequence: 1,
    phone: p.str('phone') ?? null,
    preferred_locales: p.strArr('preferred_locales') ?? [],
    shipping: null,
    tax_exempt: 'none',
    test_clock: null,
  };
  store.customers.set(customer.id, customer);
  store.emit('customer.created', customer);
  return customer;
}

function update({ store, p, params }: HandlerContext): Stripe.Customer {
  p.only(...FIELDS);
  const customer = requireCustomer(store, params.id as string);
  const before = snapshot(customer);
  if (p.has('name')) customer.name = p.str('name') || null;
  if (p.has('email')) customer.email = p.str('email') || null;
  if (p.has('description')) customer.description = p.str('description') || null;
  if (p.has('phone')) customer.phone = p.str('phone') || null;
  if (p.has('balance')) customer.balance = p.int('balance') ?? 0;
  if (p.has('preferred_locales')) customer.preferred_locales = p.strArr('preferred_locales') ?? [];
  customer.metadata = p.metadata(customer.metadata);
  const previous = changedFields(before, customer);
  if (previous) store.emit('customer.updated', customer, previous);
  return customer;
}

function remove({ store, billing, params }: HandlerContext): Stripe.DeletedCustomer {
  const customer = requireCustomer(store, params.id as string);
  // Deleting a customer cancels its subscriptions at once, as Stripe does.
  for (const sub of store.subscriptions.values()) {
    if (sub.customer === customer.id && sub.status !== 'canceled') billing.cancelNow(sub, {});
  }
  store.customers.delete(customer.id);
  store.deletedCustomers.add(customer.id);
  store.emit('customer.deleted', customer);
  return { id: customer.id, object: 'customer', deleted: true };
}

function retrieve({ store, params }: HandlerContext): Stripe.Customer | Stripe.DeletedCustomer {
  const id = params.id as string;
  if (store.deletedCustomers.has(id)) return { id, object: 'customer', deleted: true };
  return requireCustomer(store, id);
}

function list({ store, p }: HandlerContext) {
  p.only('limit', 'starting_after', 'ending_before', 'email', 'created');
  const email = p.str('email');
  if (p.has('created')) throw invalidRequest('The fake does not filter customers by created.');
  const all = newestFirst(store.customers.values()).filter((c) => !email || c.email === email);
  return paginate(all, p, '/v1/customers');
}

export const customerRoutes: Route[] = [
  route('POST', '/v1/customers', 'customers', create),
  route('GET', '/v1/customers', 'customers', list),
  route('GET', '/v1/customers/:id', 'customers', retrieve),
  route('POST', '/v1/customers/:id', 'customers', update),
  route('DELETE', '/v1/customers/:id', 'customers', remove),
];
