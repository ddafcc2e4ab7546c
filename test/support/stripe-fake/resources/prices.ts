import Stripe from 'stripe';
import { invalidParam, invalidRequest, noSuch } from '../errors.ts';
import { newId } from '../ids.ts';
import { newestFirst, paginate } from '../list.ts';
import { changedFields, type HandlerContext, type Route, route } from '../router.ts';
import { type Store, snapshot } from '../store.ts';
import { createProduct, requireProduct } from './products.ts';

export function requirePrice(store: Store, id: string, param?: string): Stripe.Price {
  const price = store.prices.get(id);
  if (!price) throw noSuch('price', id, param);
  return price;
}

const INTERVALS = ['day', 'week', 'month', 'year'] as const;

function create({ store, p }: HandlerContext): Stripe.Price {
  p.only(
    'currency',
    'product',
    'product_data',
    'unit_amount',
    'unit_amount_decimal',
    'recurring',
    'billing_scheme',
    'lookup_key',
    'nickname',
    'metadata',
    'active',
    'tax_behavior',
    'transform_quantity',
  );
  const currency = p.reqStr('currency').toLowerCase();
  let productId = p.str('product');
  const productData = p.obj('product_data');
  if (productId && productData) {
    throw invalidRequest('You may only specify one of these parameters: product, product_data.');
  }
  if (productId) requireProduct(store, productId, 'product');
  else if (productData) {
    productData.only('name', 'metadata', 'unit_label');
    productId = createProduct(store, productData.reqStr('name'), {
      metadata: productData.metadata(),
      unit_label: productData.str('unit_label') ?? null,
    }).id;
  } else throw invalidRequest('You must specify either product or product_data.', { param: 'product' });

  const scheme = p.enumOf('billing_scheme', ['per_unit', 'tiered'] as const) ?? 'per_unit';
  if (scheme === 'tiered') {
    throw invalidParam('billing_scheme', 'The Stripe fake does not support tiered prices.');
  }
  const unitAmount = p.int('unit_amount');
  const unitAmountDecimal = p.str('unit_amount_decimal');
  if (unitAmount !== undefined && unitAmountDecimal !== undefined) {
    throw invalidRequest('You may only specify one of these parameters: unit_amount, unit_amount_decimal.');
  }
  if (unitAmount === undefined && unitAmountDecimal === undefined) {
    throw invalidRequest('Missing required param: unit_amount.', {
      code: 'parameter_missing',
      param: 'unit_amount',
    });
  }
  if (unitAmount !== undefined && unitAmount < 0) throw invalidParam('unit_amount', 'Invalid unit_amount.');
  if (unitAmountDecimal !== undefined && !/^\d+(\.\d{1,12})?$/.test(unitAmountDecimal)) {
    throw invalidParam('unit_amount_decimal', `Invalid decimal: ${unitAmountDecimal}`);
  }
  const decimal = Stripe.Decimal.from(unitAmountDecimal ?? String(unitAmount));

  let recurring: Stripe.Price.Recurring | null = null;
  const r = p.obj('recurring');
  if (r) {
    r.only('interval', 'interval_count', 'usage_type', 'meter', 'trial_period_days');
    const interval = r.enumOf('interval', INTERVALS);
    if (!interval)
      throw invalidRequest('Missing required param: recurring[interval].', { param: 'recurring[interval]' });
    const usageType = r.enumOf('usage_type', ['licensed', 'metered'] as const) ?? 'licensed';
    const meterId = r.str('meter');
    // Since 2025-03-31.basil a metered price bills from a Billing Meter; usage records are gone.
    if (usageType === 'metered' && !meterId) {
      throw invalidRequest('A metered price must be backed by a meter: set recurring[meter].', {
        code: 'parameter_missing',
        param: 'recurring[meter]',
      });
    }
    if (meterId) {
      if (usageType !== 'metered') {
        throw invalidParam(
          'recurring[meter]',
          'recurring[meter] can only be set when recurring[usage_type] is metered.',
        );
      }
      const meter = store.meters.get(meterId);
      if (!meter) throw noSuch('billing.meter', meterId, 'recurring[meter]');
      if (meter.status !== 'active')
        throw invalidParam('recurring[meter]', `Meter ${meterId} is not active.`);
    }
    recurring = {
      interval,
      interval_count: r.int('interval_count') ?? 1,
      meter: meterId ?? null,
      trial_period_days: r.int('trial_period_days') ?? null,
      usage_type: usageType,
    };
  }
  let transform: Stripe.Price.TransformQuantity | null = null;
  const t = p.obj('transform_quantity');
  if (t) {
    t.only('divide_by', 'round');
    const divideBy = t.reqInt('divide_by');
    if (divideBy < 1) throw invalidParam('transform_quantity[divide_by]', 'divide_by must be at least 1.');
    transform = { divide_by: divideBy, round: t.enumOf('round', ['up', 'down'] as const) ?? 'up' };
  }
  const price: Stripe.Price = {
    id: newId('price', 24),
    object: 'price',
    active: p.bool('active') ?? true,
    billing_scheme: 'per_unit',
    created: store.now(),
    currency,
    custom_unit_amount: null,
    livemode: false,
    lookup_key: p.str('lookup_key') ?? null,
    metadata: p.metadata(),
    nickname: p.str('nickname') ?? null,
    product: productId,
    recurring,
    tax_behavior:
      p.enumOf('tax_behavior', ['exclusive', 'inclusive', 'unspecified'] as const) ?? 'unspecified',
    tiers_mode: null,
    transform_quantity: transform,
    type: recurring ? 'recurring' : 'one_time',
    unit_amount: /^\d+$/.test(decimal.toString()) ? Number(decimal.toString()) : null,
    unit_amount_decimal: decimal,
  };
  store.prices.set(price.id, price);
  store.emit('price.created', price);
  return price;
}

function update({ store, p, params }: HandlerContext): Stripe.Price {
  p.only('active', 'metadata', 'nickname', 'lookup_key', 'tax_behavior');
  const price = requirePrice(store, params.id as string);
  const before = snapshot(price);
  if (p.has('active')) price.active = p.bool('active') ?? price.active;
  if (p.has('nickname')) price.nickname = p.str('nickname') || null;
  if (p.has('lookup_key')) price.lookup_key = p.str('lookup_key') || null;
  price.metadata = p.metadata(price.metadata);
  const previous = changedFields(before, price);
  if (previous) store.emit('price.updated', price, previous);
  return price;
}

function list({ store, p }: HandlerContext) {
  p.only(
    'limit',
    'starting_after',
    'ending_before',
    'active',
    'currency',
    'product',
    'type',
    'lookup_keys',
    'recurring',
  );
  const active = p.bool('active');
  const currency = p.str('currency');
  const product = p.str('product');
  const type = p.str('type');
  const lookupKeys = p.strArr('lookup_keys');
  const rec = p.obj('recurring');
  const meter = rec?.str('meter');
  const usageType = rec?.str('usage_type');
  const all = newestFirst(store.prices.values()).filter(
    (x) =>
      (active === undefined || x.active === active) &&
      (!currency || x.currency === currency) &&
      (!product || x.product === product) &&
      (!type || x.type === type) &&
      (!lookupKeys || (x.lookup_key !== null && lookupKeys.includes(x.lookup_key))) &&
      (!meter || x.recurring?.meter === meter) &&
      (!usageType || x.recurring?.usage_type === usageType),
  );
  return paginate(all, p, '/v1/prices');
}

/** SubscriptionItem.plan mirrors the price in the legacy Plan shape. */
export function planOf(price: Stripe.Price): Stripe.Plan {
  const recurring = price.recurring;
  return {
    id: price.id,
    object: 'plan',
    active: price.active,
    amount: price.unit_amount,
    amount_decimal: price.unit_amount_decimal,
    billing_scheme: price.billing_scheme,
    created: price.created,
    currency: price.currency,
    interval: recurring?.interval ?? 'month',
    interval_count: recurring?.interval_count ?? 1,
    livemode: false,
    metadata: price.metadata,
    meter: recurring?.meter ?? null,
    nickname: price.nickname,
    product: typeof price.product === 'string' ? price.product : price.product.id,
    tiers_mode: null,
    transform_usage: price.transform_quantity,
    trial_period_days: recurring?.trial_period_days ?? null,
    usage_type: recurring?.usage_type ?? 'licensed',
  };
}

export const priceRoutes: Route[] = [
  route('POST', '/v1/prices', 'prices', create),
  route('GET', '/v1/prices', 'prices', list),
  route('GET', '/v1/prices/:id', 'prices', ({ store, params }) => requirePrice(store, params.id as string)),
  route('POST', '/v1/prices/:id', 'prices', update),
];
