// Stripe's error envelope: `{ error: { type, code?, message, param?, doc_url? } }`. stripe-node picks its
// error class from the HTTP status (and `type` for idempotency errors), so status and type must agree with
// what Stripe sends for the same condition.

export interface StripeErrorBody {
  type: 'api_error' | 'card_error' | 'idempotency_error' | 'invalid_request_error';
  code?: string;
  message: string;
  param?: string;
  doc_url?: string;
}

export class StripeFakeError extends Error {
  readonly status: number;
  readonly body: StripeErrorBody;
  readonly headers: Record<string, string>;

  constructor(status: number, body: StripeErrorBody, headers: Record<string, string> = {}) {
    super(body.message);
    this.status = status;
    this.body = body.code && !body.doc_url ? { ...body, doc_url: docUrl(body.code) } : body;
    this.headers = headers;
  }
}

export function docUrl(code: string): string {
  return `https://stripe.com/docs/error-codes/${code.replaceAll('_', '-')}`;
}

export function invalidRequest(
  message: string,
  opts: { code?: string; param?: string; status?: number } = {},
) {
  const body: StripeErrorBody = { type: 'invalid_request_error', message };
  if (opts.code) body.code = opts.code;
  if (opts.param) body.param = opts.param;
  return new StripeFakeError(opts.status ?? 400, body);
}

/** Stripe answers an unknown id in a path with 404, and an unknown id in a parameter with 400. */
export function noSuch(kind: string, id: string, param?: string) {
  return invalidRequest(`No such ${kind}: '${id}'`, {
    code: 'resource_missing',
    param: param ?? 'id',
    status: param ? 400 : 404,
  });
}

export function missingParam(param: string) {
  return invalidRequest(`Missing required param: ${param}.`, { code: 'parameter_missing', param });
}

export function invalidParam(param: string, message: string) {
  return invalidRequest(message, { code: 'parameter_invalid', param });
}

export function rateLimited(message?: string) {
  return new StripeFakeError(429, {
    type: 'invalid_request_error',
    code: 'rate_limit',
    message:
      message ??
      'Request rate limit exceeded. You can learn more about rate limits here https://stripe.com/docs/rate-limits.',
  });
}

export function lockTimeout() {
  return new StripeFakeError(429, {
    type: 'invalid_request_error',
    code: 'lock_timeout',
    message:
      'This object cannot be accessed right now because another API request or Stripe process is currently ' +
      'accessing it. If you see this error intermittently, retry the request. If you see this error ' +
      'frequently and are making multiple concurrent requests to a single object, make your requests ' +
      'serially or at a lower rate.',
  });
}

export function apiError(status = 500, message = 'An unknown error occurred') {
  return new StripeFakeError(status, { type: 'api_error', message });
}
