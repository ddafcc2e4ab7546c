import type Stripe from 'stripe';
import { invalidRequest, noSuch } from '../errors.ts';
import { newestFirst, paginate } from '../list.ts';
import { changedFields, type HandlerContext, type Route, route } from '../router.ts';
import { type Store, snapshot } from '../store.ts';
import { requireCustomer } from './customers.ts';

/** A draft shows the usage known now; reading it refreshes it, as Stripe's drafts track usage. */
export function requireInvoice(ctx: HandlerContext, id: string, param?: string): Stripe.Invoice {
  const inv = ctx.store.invoices.get(id);
  if (!inv) throw noSuch('invoice', id, param);
  if (inv.status === 'draft') ctx.billing.recompute(inv);
  return inv;
}

function invoiceList(store: Store): Stripe.Invoice[] {
  return newestFirst(store.invoices.values());
}

function list(ctx: HandlerContext) {
  const { store, billing, p } = ctx;
  p.only(
    'limit',
    'starting_after',
    'ending_before',
    'customer',
    'subscription',
    'status',
    'collection_method',
  );
  const customer = p.str('customer');
  const subscription = p.str('subscription');
  const status = p.str('status');
  const all = invoiceList(store).filter(
    (inv) =>
      (!customer || inv.customer === customer) &&
      (!subscription || inv.parent?.subscription_details?.subscription === subscription) &&
      (!status || inv.status === status),
  );
  for (const inv of all) if (inv.status === 'draft') billing.recompute(inv);
  return paginate(all, p, '/v1/invoices');
}

function lines(ctx: HandlerContext) {
  ctx.p.only('limit', 'starting_after', 'ending_before');
  const inv = requireInvoice(ctx, ctx.params.id as string);
  // Lines keep the invoice's order (oldest first), unlike top-level lists.
  return paginate([...ctx.billing.allLines(inv)], ctx.p, `/v1/invoices/${inv.id}/lines`);
}

/** A manual invoice; by default it takes the customer's pending invoice items. */
function create(ctx: HandlerContext): Stripe.Invoice {
  const { store, billing, p } = ctx;
  p.only(
    'customer',
    'auto_advance',
    'description',
    'metadata',
    'pending_invoice_items_behavior',
    'collection_method',
  );
  const customer = requireCustomer(store, p.reqStr('customer'), 'customer');
  const behavior = p.enumOf('pending_invoice_items_behavior', ['include', 'exclude'] as const) ?? 'exclude';
  const now = store.now();
  const inv = billing.createInvoice({
    customer: customer.id,
    billingReason: 'manual',
    periodStart: now,
    periodEnd: now,
    lines: [],
    pendingItems: behavior === 'include',
  });
  inv.auto_advance = p.bool('auto_advance') ?? false;
  inv.automatically_finalizes_at = inv.auto_advance ? inv.automatically_finalizes_at : null;
  inv.description = p.str('description') ?? null;
  inv.metadata = p.metadata();
  return inv;
}

function update(ctx: HandlerContext): Stripe.Invoice {
  const { store, settings, p } = ctx;
  p.only('metadata', 'description', 'auto_advance', 'footer');
  const inv = requireInvoice(ctx, ctx.params.id as string);
  const before = snapshot(inv);
  if (p.has('description') || p.has('auto_advance') || p.has('footer')) {
    if (inv.status !== 'draft') {
      throw invalidRequest("Finalized invoices can't be updated in this way", {
        code: 'invoice_not_editable',
      });
    }
  }
  if (p.has('description')) inv.description = p.str('description') || null;
  if (p.has('footer')) inv.footer = p.str('footer') || null;
  if (p.has('auto_advance')) {
    inv.auto_advance = p.bool('auto_advance') ?? true;
    inv.automatically_finalizes_at = inv.auto_advance
      ? Math.max(store.now(), inv.created + settings.invoiceGracePeriodSeconds)
      : null;
  }
  inv.metadata = p.metadata(inv.metadata ?? {});
  const previous = changedFields(before, inv);
  if (previous) store.emit('invoice.updated', inv, previous);
  return inv;
}

function finalize(ctx: HandlerContext): Stripe.Invoice {
  ctx.p.only('auto_advance');
  const inv = requireInvoice(ctx, ctx.params.id as string);
  if (inv.status !== 'draft') {
    throw invalidRequest("This invoice is already finalized, you can't re-finalize a non-draft invoice.", {
      code: 'invoice_not_editable',
    });
  }
  ctx.billing.finalize(inv);
  return inv;
}

function voidInvoice(ctx: HandlerContext): Stripe.Invoice {
  ctx.p.only();
  const inv = requireInvoice(ctx, ctx.params.id as string);
  if (inv.status !== 'open' && inv.status !== 'uncollectible') {
    throw invalidRequest(
      `You can only pass in open or uncollectible invoices. This invoice is ${inv.status}.`,
      {
        code: 'invoice_not_editable',
      },
    );
  }
  inv.status = 'void';
  inv.status_transitions.voided_at = ctx.store.now();
  inv.amount_remaining = 0;
  ctx.store.emit('invoice.voided', inv);
  return inv;
}

function pay(ctx: HandlerContext): Stripe.Invoice {
  ctx.p.only('paid_out_of_band');
  const inv = requireInvoice(ctx, ctx.params.id as string);
  if (inv.status === 'draft') ctx.billing.finalize(inv);
  if (inv.status === 'paid')
    throw invalidRequest('Invoice is already paid', { code: 'invoice_payment_intent_requires_action' });
  if (inv.status !== 'open') throw invalidRequest(`This invoice can't be paid: it is ${inv.status}.`);
  ctx.billing.markPaid(inv);
  return inv;
}

function remove(ctx: HandlerContext): Stripe.DeletedInvoice {
  const inv = requireInvoice(ctx, ctx.params.id as string);
  if (inv.status !== 'draft') {
    throw invalidRequest('You can only delete draft invoices.', { code: 'invoice_not_editable' });
  }
  for (const ii of ctx.store.invoiceItems.values()) if (ii.invoice === inv.id) ii.invoice = null;
  ctx.store.invoices.delete(inv.id);
  ctx.store.emit('invoice.deleted', inv);
  return { id: inv.id, object: 'invoice', deleted: true };
}

export const invoiceRoutes: Route[] = [
  route('POST', '/v1/invoices', 'invoices', create),
  route('GET', '/v1/invoices', 'invoices', list),
  route('GET', '/v1/invoices/:id', 'invoices', (ctx) => requireInvoice(ctx, ctx.params.id as string)),
  route('POST', '/v1/invoices/:id', 'invoices', update),
  route('DELETE', '/v1/invoices/:id', 'invoices', remove),
  route('GET', '/v1/invoices/:id/lines', 'invoices', lines),
  route('POST', '/v1/invoices/:id/finalize', 'invoices', finalize),
  route('POST', '/v1/invoices/:id/void', 'invoices', voidInvoice),
  route('POST', '/v1/invoices/:id/pay', 'invoices', pay),
];
