import type Stripe from 'stripe';
import { invalidRequest } from './errors.ts';
import type { ParamReader } from './form.ts';

/**
 * Stripe's cursor pagination over a newest-first list: `limit` (1–100, default 10), `starting_after`
 * (the page after that object), `ending_before` (the page just before it).
 */
export function paginate<T extends { id?: string | null }>(
  newestFirst: T[],
  p: ParamReader,
  url: string,
): Stripe.ApiList<T> {
  const limit = p.int('limit') ?? 10;
  if (limit < 1 || limit > 100) {
    throw invalidRequest('Invalid limit: must be between 1 and 100', {
      code: 'parameter_invalid_integer',
      param: 'limit',
    });
  }
  const startingAfter = p.str('starting_after');
  const endingBefore = p.str('ending_before');
  if (startingAfter && endingBefore) {
    throw invalidRequest('You may only specify one of these parameters: ending_before, starting_after.');
  }
  const indexOf = (id: string, param: string) => {
    const i = newestFirst.findIndex((o) => o.id === id);
    if (i < 0) {
      throw invalidRequest(`No such object: '${id}'`, { code: 'resource_missing', param });
    }
    return i;
  };
  let data: T[];
  let hasMore: boolean;
  if (startingAfter) {
    const from = indexOf(startingAfter, 'starting_after') + 1;
    data = newestFirst.slice(from, from + limit);
    hasMore = from + limit < newestFirst.length;
  } else if (endingBefore) {
    const to = indexOf(endingBefore, 'ending_before');
    const from = Math.max(0, to - limit);
    data = newestFirst.slice(from, to);
    hasMore = from > 0;
  } else {
    data = newestFirst.slice(0, limit);
    hasMore = limit < newestFirst.length;
  }
  return { object: 'list', data, has_more: hasMore, url };
}

export function newestFirst<T>(values: Iterable<T>): T[] {
  return [...values].reverse();
}
