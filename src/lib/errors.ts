/**
 * The one error registry: each code has a stable name, an HTTP status and whether retrying can help.
 * The HTTP error handler renders these as application/problem+json.
 */
export const ERRORS = {
  ML_ERR_HTTP_BAD_REQUEST: { status: 400, title: 'Bad Request', retryable: false },
  ML_ERR_HTTP_UNAUTHORIZED: { status: 401, title: 'Unauthorized', retryable: false },
  ML_ERR_HTTP_NOT_FOUND: { status: 404, title: 'Not Found', retryable: false },
  ML_ERR_HTTP_PAYLOAD_TOO_LARGE: { status: 413, title: 'Payload Too Large', retryable: false },
  ML_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported Media Type', retryable: false },
  ML_ERR_METER_CONFLICT: { status: 409, title: 'Conflict', retryable: false },
  ML_ERR_INGEST_INVALID_EVENTS: { status: 400, title: 'Invalid events', retryable: false },
  ML_ERR_INGEST_TOO_MANY_EVENTS: { status: 413, title: 'Too many events', retryable: false },
  ML_ERR_STRIPE_NOT_CONFIGURED: { status: 503, title: 'Stripe not configured', retryable: false },
  ML_ERR_STRIPE_KEY_REJECTED: { status: 400, title: 'Stripe key rejected', retryable: false },
  ML_ERR_STRIPE_PERMISSIONS: { status: 400, title: 'Stripe key lacks permissions', retryable: false },
  ML_ERR_STRIPE_SIGNATURE: { status: 400, title: 'Invalid webhook signature', retryable: false },
  // stripe-node has already retried twice by then: give Stripe a few seconds before the next try.
  ML_ERR_STRIPE_UNAVAILABLE: {
    status: 502,
    title: 'Stripe unavailable',
    retryable: true,
    retryAfterSeconds: 5,
  },
  ML_ERR_EVENTLOG_FULL: { status: 503, title: 'Event log full', retryable: true },
  ML_ERR_EVENTLOG_UNAVAILABLE: { status: 503, title: 'Event log unavailable', retryable: true },
  ML_ERR_INTERNAL: { status: 500, title: 'Internal Server Error', retryable: true },
} as const satisfies Record<
  string,
  { status: number; title: string; retryable: boolean; retryAfterSeconds?: number }
>;

export type ErrorCode = keyof typeof ERRORS;

export class AppError extends Error {
  readonly status: number;
  readonly title: string;
  readonly retryable: boolean;
  /** The Retry-After the answer carries, for a failure retrying can fix. */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra problem+json members, e.g. the list of invalid fields. */
    readonly extensions: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    const entry = ERRORS[code];
    this.name = 'AppError';
    this.status = entry.status;
    this.title = entry.title;
    this.retryable = entry.retryable;
    this.retryAfterSeconds =
      'retryAfterSeconds' in entry
        ? entry.retryAfterSeconds
        : entry.retryable && entry.status === 503
          ? 1
          : undefined;
  }
}

/** One invalid field of a request: `index` is the event's position in a batch. */
export type FieldProblem = { index?: number; field: string; message: string };
