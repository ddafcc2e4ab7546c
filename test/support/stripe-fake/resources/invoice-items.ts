import type Stripe from 'stripe';
import { invalidParam, invalidRequest, missingParam, noSuch } from '../errors.ts';
import { newestFirst, paginate } from '../list.ts';
import { changedFields, type HandlerContext, type Route, route } from '../router.ts';
import { type Store, snapshot } from '../store.ts';
import { dec } from '../usage.ts';
import { requireCustomer } from './customers.ts';
import { requirePrice } from './prices.ts';
import { requireSubscription } from './subscriptions.ts';

function requireInvoiceItem(store: Store, id: string): Stripe.InvoiceItem {
  const ii = store.invoiceItems.get(id);
  if (!ii) throw noSuch('invoiceitem', id);
  return ii;
}

/**
 * A one-off charge (or credit, when negative) for the customer's next invoice; with `invoice`, added to
 * that draft instead.
 */
function create({ store, billing, p }: HandlerContext): Stripe.InvoiceItem {
  p.only(
    'customer',
    'amount',
    'currency',
    'description',
    'metadata',
    'period',
    'invoice',
    'subscription',
    'pricing',
    'quantity',
    'quantity_decimal',
    'unit_amount_decimal',
    'discountable',
  );
  const customer = requireCustomer(store, p.reqStr('customer'), 'customer');
  const invoiceId = p.str('invoice');
  if (invoiceId) {
    const inv = store.invoices.get(invoiceId);
    if (!inv) throw noSuch('invoice', invoiceId, 'invoice');
    if (inv.status !== 'draft') {
      throw invalidRequest('You can only add invoice items to draft invoices.', {
        param: 'invoice',
        code: 'invoice_not_editable',
      });
    }
    if (inv.customer !== customer.id)
      throw invalidParam('invoice', 'The invoice belongs to another customer.');
  }
  const subscription = p.str('subscription');
  if (subscription) requireSubscription(store, subscription, 'subscription');
  const priceId = p.obj('pricing')?.only('price').str('price');
  const price = priceId ? requirePrice(store, priceId, 'pricing[price]') : undefined;
  const quantityDecimal = p.str('quantity_decimal');
  const quantity = quantityDecimal !== undefined ? dec(quantityDecimal) : dec(p.int('quantity') ?? 1);
  const amountParam = p.int('amount');
  const unit = p.str('unit_amount_decimal');
  if ([amountParam !== undefined, unit !== undefined, price !== undefined].filter(Boolean).length > 1) {
    throw invalidRequest(
      'You may only specify one of these parameters: amount, pricing[price], unit_amount_decimal.',
    );
  }
  let amount: number;
  if (amountParam !== undefined) amount = amountParam;
  else if (unit !== undefined) {
    amount = quantity.mul(dec(unit)).round('half-up', { mode: 'decimal-places', value: 0 }).toNumber();
  } else if (price) {
    if (price.type !== 'one_time')
      throw invalidParam('pricing[price]', 'The price must be a one-time price.');
    amount = quantity
      .mul(price.unit_amount_decimal ?? dec(0))
      .round('half-up', { mode: 'decimal-places', value: 0 })
      .toNumber();
  } else throw missingParam('amount');
  const currency = (p.str('currency') ?? price?.currency)?.toLowerCase();
  if (!currency) throw missingParam('currency');
  const period = p.obj('period');
  period?.only('start', 'end');
  const now = store.now();
  const ii = billing.newInvoiceItem({
    customer: customer.id,
    currency,
    amount,
    quantity,
    price,
    unitAmountDecimal:
      unit !== undefined ? dec(unit) : amountParam !== undefined ? dec(amountParam) : undefined,
    description: p.str('description') ?? null,
    period: { start: period?.int('start') ?? now, end: period?.int('end') ?? now },
    subscription,
    invoice: invoiceId,
    metadata: p.metadata(),
  });
  if (p.has('discountable')) ii.discountable = p.bool('discountable') ?? true;
  store.emit('invoiceitem.created', ii);
  return ii;
}

function update({ store, billing, p, params }: HandlerContext): Stripe.InvoiceItem {
  p.only('amount', 'description', 'metadata');
  const ii = requireInvoiceItem(store, params.id as string);
  const inv = ii.invoice ? store.invoices.get(ii.invoice as string) : undefined;
  if ((p.has('amount') || p.has('description')) && inv && inv.status !== 'draft') {
    throw invalidRequest('This invoice item is on a finalized invoice and can no longer be changed.');
  }
  const before = snapshot(ii);
  if (p.has('amount')) {
    ii.amount = p.reqInt('amount');
    ii.net_amount = ii.amount;
  }
  if (p.has('description')) ii.description = p.str('description') || null;
  ii.metadata = p.metadata(ii.metadata ?? {});
  if (inv) billing.recompute(inv);
  // Stripe has no invoiceitem.updated event; the draft invoice it sits on changes instead.
  if (inv && changedFields(before, ii)) store.emit('invoice.updated', inv);
  return ii;
}

function remove({ store, billing, params }: HandlerContext): Stripe.DeletedInvoiceItem {
  const ii = requireInvoiceItem(store, params.id as string);
  const inv = ii.invoice ? store.invoices.get(ii.invoice as string) : undefined;
  if (inv && inv.status !== 'draft') {
    throw invalidRequest('This invoice item is on a finalized invoice and can no longer be deleted.');
  }
  store.invoiceItems.delete(ii.id);
  if (inv) {
    const state = store.invoiceState.get(inv.id);
    if (state)
      state.lines = state.lines.filter((l) => !(l.kind === 'invoiceitem' && l.invoiceItemId === ii.id));
    billing.recompute(inv);
  }
  store.emit('invoiceitem.deleted', ii);
  return { id: ii.id, object: 'invoiceitem', deleted: true };
}

function list({ store, p }: HandlerContext) {
  p.only('limit', 'starting_after', 'ending_before', 'customer', 'invoice', 'pending');
  const customer = p.str('customer');
  const invoice = p.str('invoice');
  const pending = p.bool('pending');
  const all = newestFirst(store.invoiceItems.values()).filter(
    (ii) =>
      (!customer || ii.customer === customer) &&
      (!invoice || ii.invoice === invoice) &&
      (pending === undefined || (ii.invoice === null) === pending),
  );
  return paginate(all, p, '/v1/invoiceitems');
}

export const invoiceItemRoutes: Route[] = [
  route('POST', '/v1/invoiceitems', 'invoice_items', create),
  route('GET', '/v1/invoiceitems', 'invoice_items', list),
  route('GET', '/v1/invoiceitems/:id', 'invoice_items', ({ store, params }) =>
    requireInvoiceItem(store, params.id as string),
  ),
  route('POST', '/v1/invoiceitems/:id', 'invoice_items', update),
  route('DELETE', '/v1/invoiceitems/:id', 'invoice_items', remove),
];
