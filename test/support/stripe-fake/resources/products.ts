import type Stripe from 'stripe';
import { invalidRequest, noSuch } from '../errors.ts';
import { newId } from '../ids.ts';
import { newestFirst, paginate } from '../list.ts';
import { changedFields, type HandlerContext, type Route, route } from '../router.ts';
import { type Store, snapshot } from '../store.ts';

export function requireProduct(store: Store, id: string, param?: string): Stripe.Product {
  const product = store.products.get(id);
  if (!product) throw noSuch('product', id, param);
  return product;
}

export function createProduct(
  store: Store,
  name: string,
  fields: Partial<Stripe.Product> = {},
): Stripe.Product {
  const now = store.now();
  const product: Stripe.Product = {
    id: fields.id ?? newId('prod', 14),
    object: 'product',
    active: fields.active ?? true,
    created: now,
    default_price: null,
    description: fields.description ?? null,
    images: [],
    livemode: false,
    marketing_features: [],
    metadata: fields.metadata ?? {},
    name,
    package_dimensions: null,
    shippable: null,
    statement_descriptor: null,
    tax_code: null,
    tax_details: null,
    type: 'service',
    unit_label: fields.unit_label ?? null,
    updated: now,
    url: null,
  };
  if (store.products.has(product.id)) {
    throw invalidRequest('Product already exists.', { code: 'resource_already_exists', param: 'id' });
  }
  store.products.set(product.id, product);
  store.emit('product.created', product);
  return product;
}

function create({ store, p }: HandlerContext): Stripe.Product {
  p.only('name', 'id', 'active', 'description', 'metadata', 'unit_label');
  return createProduct(store, p.reqStr('name'), {
    id: p.str('id'),
    active: p.bool('active'),
    description: p.str('description') ?? null,
    metadata: p.metadata(),
    unit_label: p.str('unit_label') ?? null,
  });
}

function update({ store, p, params }: HandlerContext): Stripe.Product {
  p.only('name', 'active', 'description', 'metadata', 'unit_label', 'default_price');
  const product = requireProduct(store, params.id as string);
  const before = snapshot(product);
  if (p.has('name')) product.name = p.reqStr('name');
  if (p.has('active')) product.active = p.bool('active') ?? product.active;
  if (p.has('description')) product.description = p.str('description') || null;
  if (p.has('unit_label')) product.unit_label = p.str('unit_label') || null;
  if (p.has('default_price')) product.default_price = p.str('default_price') || null;
  product.metadata = p.metadata(product.metadata);
  product.updated = store.now();
  const previous = changedFields(before, product);
  if (previous) store.emit('product.updated', product, previous);
  return product;
}

function remove({ store, params }: HandlerContext): Stripe.DeletedProduct {
  const product = requireProduct(store, params.id as string);
  if ([...store.prices.values()].some((price) => price.product === product.id)) {
    throw invalidRequest('This product cannot be deleted because it has one or more user-created prices.');
  }
  store.products.delete(product.id);
  store.emit('product.deleted', product);
  return { id: product.id, object: 'product', deleted: true };
}

function list({ store, p }: HandlerContext) {
  p.only('limit', 'starting_after', 'ending_before', 'active', 'ids');
  const active = p.bool('active');
  const ids = p.strArr('ids');
  const all = newestFirst(store.products.values()).filter(
    (x) => (active === undefined || x.active === active) && (!ids || ids.includes(x.id)),
  );
  return paginate(all, p, '/v1/products');
}

export const productRoutes: Route[] = [
  route('POST', '/v1/products', 'products', create),
  route('GET', '/v1/products', 'products', list),
  route('GET', '/v1/products/:id', 'products', ({ store, params }) =>
    requireProduct(store, params.id as string),
  ),
  route('POST', '/v1/products/:id', 'products', update),
  route('DELETE', '/v1/products/:id', 'products', remove),
];
