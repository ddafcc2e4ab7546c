import type Stripe from 'stripe';
import { invalidParam, invalidRequest, missingParam, noSuch } from '../errors.ts';
import { newId } from '../ids.ts';
import { newestFirst, paginate } from '../list.ts';
import { changedFields, type HandlerContext, type Route, route } from '../router.ts';
import { type Store, snapshot } from '../store.ts';
import { dec } from '../usage.ts';
import { requireInvoice } from './invoices.ts';

// Credit notes reduce a finalized invoice: before payment they lower what is due (pre_payment); after
// payment they credit the customer's balance or are settled out of band (post_payment). Refunds are not
// modelled: refund_amount is recorded like out_of_band_amount.

const lineItems = new WeakMap<Stripe.CreditNote, Stripe.CreditNoteLineItem[]>();

function requireCreditNote(store: Store, id: string): Stripe.CreditNote {
  const cn = store.creditNotes.get(id);
  if (!cn) throw noSuch('credit_note', id);
  return cn;
}

function activeNotes(store: Store, invoiceId: string): Stripe.CreditNote[] {
  return [...store.creditNotes.values()].filter((cn) => cn.invoice === invoiceId && cn.status !== 'void');
}

function creditedOnLine(store: Store, invoiceId: string, lineId: string): number {
  let sum = 0;
  for (const cn of activeNotes(store, invoiceId)) {
    for (const line of lineItems.get(cn) ?? []) if (line.invoice_line_item === lineId) sum += line.amount;
  }
  return sum;
}

function create(ctx: HandlerContext): Stripe.CreditNote {
  const { store, billing, p } = ctx;
  p.only(
    'invoice',
    'amount',
    'lines',
    'reason',
    'memo',
    'metadata',
    'credit_amount',
    'refund_amount',
    'out_of_band_amount',
    'effective_at',
  );
  const inv = requireInvoice(ctx, p.reqStr('invoice'), 'invoice');
  if (inv.status !== 'open' && inv.status !== 'paid') {
    throw invalidParam(
      'invoice',
      `Credit notes can only be issued for open or paid invoices; this invoice is ${inv.status}.`,
    );
  }
  const invoiceLines = billing.allLines(inv);
  const lines: Stripe.CreditNoteLineItem[] = [];
  for (const [i, lp] of (p.arr('lines') ?? []).entries()) {
    lp.only(
      'type',
      'invoice_line_item',
      'amount',
      'quantity',
      'description',
      'unit_amount',
      'unit_amount_decimal',
      'metadata',
    );
    const type = lp.enumOf('type', ['invoice_line_item', 'custom_line_item'] as const);
    if (!type) throw missingParam(`lines[${i}][type]`);
    const quantity = lp.int('quantity');
    let amount: number;
    let unit: Stripe.Decimal | null = null;
    let invoiceLineItem: string | undefined;
    let description = lp.str('description') ?? null;
    if (type === 'invoice_line_item') {
      invoiceLineItem = lp.reqStr('invoice_line_item');
      const line = invoiceLines.find((l) => l.id === invoiceLineItem);
      if (!line) throw noSuch('invoice line item', invoiceLineItem, `lines[${i}][invoice_line_item]`);
      unit = line.pricing?.unit_amount_decimal ?? null;
      amount =
        lp.int('amount') ??
        (quantity !== undefined && unit
          ? dec(quantity).mul(unit).round('half-up', { mode: 'decimal-places', value: 0 }).toNumber()
          : line.amount);
      const left = line.amount - creditedOnLine(store, inv.id, line.id);
      if (amount > left) {
        throw invalidParam(
          `lines[${i}][amount]`,
          `The credit note line amount (${amount}) exceeds the remaining creditable amount (${left}) of invoice line ${line.id}.`,
        );
      }
      description = description ?? line.description;
    } else {
      const unitDecimal = lp.str('unit_amount_decimal') ?? String(lp.int('unit_amount') ?? '');
      if (unitDecimal === '') throw missingParam(`lines[${i}][unit_amount]`);
      unit = dec(unitDecimal);
      amount = dec(quantity ?? 1)
        .mul(unit)
        .round('half-up', { mode: 'decimal-places', value: 0 })
        .toNumber();
    }
    const cnLine: Stripe.CreditNoteLineItem = {
      id: newId('cnli', 24),
      object: 'credit_note_line_item',
      amount,
      description,
      discount_amount: 0,
      discount_amounts: [],
      livemode: false,
      metadata: lp.metadata(),
      pretax_credit_amounts: [],
      quantity: quantity ?? null,
      tax_rates: [],
      taxes: [],
      type,
      unit_amount: unit && /^-?\d+$/.test(unit.toString()) ? unit.toNumber() : null,
      unit_amount_decimal: unit,
    };
    if (invoiceLineItem) cnLine.invoice_line_item = invoiceLineItem;
    lines.push(cnLine);
  }
  const linesTotal = lines.reduce((s, l) => s + l.amount, 0);
  const amountParam = p.int('amount');
  if (amountParam === undefined && lines.length === 0) {
    throw invalidRequest('You must pass either `amount` or `lines`.', { param: 'amount' });
  }
  if (amountParam !== undefined && lines.length > 0 && amountParam !== linesTotal) {
    throw invalidParam(
      'amount',
      `The amount (${amountParam}) must equal the sum of the lines (${linesTotal}).`,
    );
  }
  const amount = amountParam ?? linesTotal;
  if (amount <= 0) throw invalidParam('amount', 'The credit note amount must be greater than 0.');
  const prePayment = inv.status === 'open';
  const creditable = prePayment
    ? inv.amount_remaining
    : inv.amount_paid - inv.post_payment_credit_notes_amount;
  if (amount > creditable) {
    throw invalidParam(
      'amount',
      `The credit note amount (${amount}) exceeds the invoice's remaining creditable amount (${creditable}).`,
    );
  }
  let creditAmount = p.int('credit_amount');
  const refundAmount = p.int('refund_amount');
  const outOfBand = p.int('out_of_band_amount');
  if (prePayment && (creditAmount || refundAmount || outOfBand)) {
    throw invalidParam(
      'credit_amount',
      'credit_amount, refund_amount and out_of_band_amount apply to paid invoices only.',
    );
  }
  if (!prePayment) {
    const given = (creditAmount ?? 0) + (refundAmount ?? 0) + (outOfBand ?? 0);
    if (creditAmount === undefined && refundAmount === undefined && outOfBand === undefined)
      creditAmount = amount;
    else if (given !== amount) {
      throw invalidParam(
        'credit_amount',
        `The sum of credit amount, refund amount and out of band amount (${given}) must equal the credit note amount (${amount}).`,
      );
    }
  }
  const now = store.now();
  const noteCount = activeNotes(store, inv.id).length + 1;
  const id = newId('cn', 24);
  const lineList = lines.length > 0 ? lines : [];
  const cn: Stripe.CreditNote = {
    id,
    object: 'credit_note',
    amount,
    amount_shipping: 0,
    created: now,
    currency: inv.currency,
    customer: inv.customer as string,
    customer_account: null,
    customer_balance_transaction: creditAmount ? newId('cbtxn', 24) : null,
    discount_amount: 0,
    discount_amounts: [],
    effective_at: p.int('effective_at') ?? now,
    invoice: inv.id,
    lines: {
      object: 'list',
      data: lineList.slice(0, 10),
      has_more: lineList.length > 10,
      url: `/v1/credit_notes/${id}/lines`,
    },
    livemode: false,
    memo: p.str('memo') ?? null,
    metadata: p.metadata(),
    number: `${inv.number ?? 'CN'}-CN-${String(noteCount).padStart(2, '0')}`,
    out_of_band_amount: prePayment ? null : (outOfBand ?? 0) + (refundAmount ?? 0),
    pdf: `https://stripe-fake.invalid/credit_notes/${id}.pdf`,
    post_payment_amount: prePayment ? 0 : amount,
    pre_payment_amount: prePayment ? amount : 0,
    pretax_credit_amounts: [],
    reason: (p.enumOf('reason', [
      'duplicate',
      'fraudulent',
      'order_change',
      'product_unsatisfactory',
    ] as const) ?? null) as Stripe.CreditNote.Reason | null,
    refunds: [],
    shipping_cost: null,
    status: 'issued',
    subtotal: amount,
    subtotal_excluding_tax: amount,
    total: amount,
    total_excluding_tax: amount,
    total_taxes: [],
    type: prePayment ? 'pre_payment' : 'post_payment',
    voided_at: null,
  };
  lineItems.set(cn, lineList);
  store.creditNotes.set(id, cn);
  const before = snapshot(inv);
  applyToInvoice(ctx, cn, inv, 1);
  store.emit('credit_note.created', cn);
  const previous = changedFields(before, inv);
  if (previous) store.emit('invoice.updated', inv, previous);
  return cn;
}

function applyToInvoice(ctx: HandlerContext, cn: Stripe.CreditNote, inv: Stripe.Invoice, sign: 1 | -1): void {
  const { store, billing } = ctx;
  if (cn.type === 'pre_payment') {
    inv.pre_payment_credit_notes_amount += sign * cn.amount;
    billing.recompute(inv);
    // An invoice credited down to nothing due counts as paid.
    if (sign === 1 && inv.status === 'open' && inv.amount_remaining === 0) billing.markPaid(inv);
  } else {
    inv.post_payment_credit_notes_amount += sign * cn.amount;
    const customer = store.customers.get(cn.customer as string);
    const credit = cn.amount - (cn.out_of_band_amount ?? 0);
    if (customer && credit > 0) customer.balance -= sign * credit;
  }
}

function voidNote(ctx: HandlerContext): Stripe.CreditNote {
  ctx.p.only();
  const cn = requireCreditNote(ctx.store, ctx.params.id as string);
  if (cn.status === 'void') throw invalidRequest('This credit note has already been voided.');
  const inv = ctx.store.invoices.get(cn.invoice as string) as Stripe.Invoice;
  cn.status = 'void';
  cn.voided_at = ctx.store.now();
  applyToInvoice(ctx, cn, inv, -1);
  ctx.store.emit('credit_note.voided', cn);
  return cn;
}

function list({ store, p }: HandlerContext) {
  p.only('limit', 'starting_after', 'ending_before', 'invoice', 'customer');
  const invoice = p.str('invoice');
  const customer = p.str('customer');
  const all = newestFirst(store.creditNotes.values()).filter(
    (cn) => (!invoice || cn.invoice === invoice) && (!customer || cn.customer === customer),
  );
  return paginate(all, p, '/v1/credit_notes');
}

function lines({ store, p, params }: HandlerContext) {
  p.only('limit', 'starting_after', 'ending_before');
  const cn = requireCreditNote(store, params.id as string);
  return paginate([...(lineItems.get(cn) ?? [])], p, `/v1/credit_notes/${cn.id}/lines`);
}

export const creditNoteRoutes: Route[] = [
  route('POST', '/v1/credit_notes', 'credit_notes', create),
  route('GET', '/v1/credit_notes', 'credit_notes', list),
  route('GET', '/v1/credit_notes/:id', 'credit_notes', ({ store, params }) =>
    requireCreditNote(store, params.id as string),
  ),
  route('GET', '/v1/credit_notes/:id/lines', 'credit_notes', lines),
  route('POST', '/v1/credit_notes/:id/void', 'credit_notes', voidNote),
];
