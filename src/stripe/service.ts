import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import Stripe from 'stripe';
import type { Db } from '../db/client.ts';
import { AppError } from '../lib/errors.ts';
import type { MeterService } from '../meters/service.ts';
import type { Subject, SubjectStore } from '../subjects/store.ts';
import {
  createStripeClient,
  isKeyRefused,
  isPermissionError,
  STRIPE_API_VERSION,
  withStripeBackoff,
} from './client.ts';
import { createSecretBox, parseEncryptionKey, type SecretBox } from './secrets.ts';
import { type ConnectionRow, createStripeStore, type MirrorCustomer, type StripeStore } from './store.ts';
import { applyStripeEvent, CONSUMED_EVENTS, reconcileMirror } from './sync.ts';

export type StripeService = ReturnType<typeof createStripeService>;

export type StripeOptions = {
  apiBase: string;
  encryptionKey?: string;
  publicUrl?: string;
  subjectMetadataKey: string;
  /** Stripe's time as this process sees it (tests pass the Stripe fake's clock). */
  clock?: () => Date;
};

/** Verifies deliveries to namespaces without a secret: random per process, so nothing can match it. */
const UNKNOWN_NAMESPACE_SECRET = `whsec_${randomBytes(24).toString('base64url')}`;

/** Stripe's webhook signature tolerance: older signed payloads are replays. */
export const WEBHOOK_TOLERANCE_SECONDS = 300;

/**
 * Harmless calls that tell whether a key may do what Meterline needs: list calls for reads, and
 * deliberately incomplete writes for writes (Stripe checks permissions before parameters, so a
 * restricted key without the permission gets 403, one with it gets 400 and nothing is created).
 */
const PERMISSION_PROBES: { permission: string; probe: (stripe: Stripe) => Promise<unknown> }[] = [
  { permission: 'customers: read', probe: (s) => s.customers.list({ limit: 1 }) },
  { permission: 'subscriptions: read', probe: (s) => s.subscriptions.list({ limit: 1 }) },
  { permission: 'prices: read', probe: (s) => s.prices.list({ limit: 1 }) },
  { permission: 'billing meters: read', probe: (s) => s.billing.meters.list({ limit: 1 }) },
  { permission: 'invoices: read', probe: (s) => s.invoices.list({ limit: 1 }) },
  {
    permission: 'billing meter events: write',
    probe: (s) => s.billing.meterEvents.create({ event_name: '', payload: {} }),
  },
  { permission: 'credit notes: write', probe: (s) => s.creditNotes.create({ invoice: '' }) },
  { permission: 'invoice items: write', probe: (s) => s.invoiceItems.create({ customer: '' }) },
];

/** Stripe unreachable, failing or still rate limited after backoff: a 502 the caller may retry, not a 500. */
function asUpstreamError(err: unknown): unknown {
  if (err instanceof AppError || !(err instanceof Stripe.errors.StripeError)) return err;
  if (
    err instanceof Stripe.errors.StripeConnectionError ||
    err instanceof Stripe.errors.StripeAPIError ||
    err instanceof Stripe.errors.StripeRateLimitError ||
    (err.statusCode ?? 0) >= 500
  ) {
    return new AppError(
      'ML_ERR_STRIPE_UNAVAILABLE',
      `Stripe did not answer (${err.message}); nothing was changed, retry in a few seconds`,
      {},
      { cause: err },
    );
  }
  return err;
}

/** Groups `items` by `keyOf`, in their order; items without a key are left out. */
function groupBy<T>(items: T[], keyOf: (item: T) => string | null | undefined): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    if (key) groups.set(key, [...(groups.get(key) ?? []), item]);
  }
  return groups;
}

/**
 * Which subject each Stripe customer bills: its metadata, else the subject that names it through
 * the subjects API, else its own id. Claims that disagree are reported: each would bill some usage
 * to the wrong customer, or split a subject's usage between two.
 */
function mapCustomers(
  customers: MirrorCustomer[],
  subjects: Subject[],
  metadataKey: string,
  problems: string[],
) {
  const subjectsByCustomer = groupBy(subjects, (s) => s.stripeCustomerId);
  for (const [customerId, claimants] of subjectsByCustomer) {
    if (claimants.length > 1) {
      const keys = claimants.map((s) => s.key);
      problems.push(
        `subjects ${keys.join(' and ')} name the same Stripe customer ${customerId} in the subjects API; ${keys[0]} is used`,
      );
    }
  }
  const mapped = customers.map((c) => {
    const fromMetadata = c.metadata[metadataKey];
    const fromSubjects = subjectsByCustomer.get(c.id)?.[0]?.key;
    if (fromMetadata && fromSubjects && fromMetadata !== fromSubjects) {
      problems.push(
        `Stripe customer ${c.id} has metadata ${metadataKey}=${fromMetadata}, but the subjects API links it to subject ${fromSubjects}; the metadata wins`,
      );
    }
    return {
      customerId: c.id,
      subject: fromMetadata ?? fromSubjects ?? c.id,
      subjectFrom: fromMetadata ? 'metadata' : fromSubjects ? 'subjects' : 'customer_id',
    };
  });
  const from = (c: (typeof mapped)[number]) =>
    c.subjectFrom === 'metadata' ? `metadata ${metadataKey}` : 'the subjects API';
  for (const [subject, claimants] of groupBy(mapped, (c) =>
    c.subjectFrom === 'customer_id' ? null : c.subject,
  )) {
    if (claimants.length > 1) {
      problems.push(
        `subject ${subject} is claimed by several Stripe customers: ${claimants.map((c) => `${c.customerId} (by ${from(c)})`).join(' and ')}`,
      );
    }
  }
  return mapped;
}

export function createStripeService(
  deps: { db: Db; meters: MeterService; subjects: SubjectStore; logger: Logger },
  options: StripeOptions,
) {
  const store: StripeStore = createStripeStore(deps.db);
  const key = options.encryptionKey ? parseEncryptionKey(options.encryptionKey) : null;
  const box: SecretBox | null = key ? createSecretBox(key) : null;
  const clock = options.clock ?? (() => new Date());

  function requireBox(): SecretBox {
    if (!box) {
      throw new AppError(
        'ML_ERR_STRIPE_NOT_CONFIGURED',
        'STRIPE_ENCRYPTION_KEY is not set, so Stripe keys cannot be stored',
      );
    }
    return box;
  }

  async function connection(namespace: string): Promise<ConnectionRow> {
    const row = await store.getConnection(namespace);
    if (!row) throw new AppError('ML_ERR_HTTP_NOT_FOUND', 'no Stripe account is connected');
    return row;
  }

  /** The namespace's Stripe client, its key decrypted only in memory. */
  async function clientFor(namespace: string): Promise<Stripe> {
    const row = await connection(namespace);
    return createStripeClient(requireBox().open(row.api_key_encrypted, namespace), options.apiBase);
  }

  async function sync(namespace: string) {
    const stripe = await clientFor(namespace);
    try {
      await reconcileMirror(stripe, store, namespace, clock);
    } catch (err) {
      throw asUpstreamError(err);
    }
    const problems = (await mapping(namespace)).problems;
    await store.recordSync(namespace, problems);
    return problems;
  }

  async function mapping(namespace: string) {
    const mirror = await store.readMirror(namespace);
    const meters = await deps.meters.list(namespace);
    const links = await store.meterLinks(namespace);
    const subjects = await deps.subjects.list(namespace);
    const formulaFor: Record<string, string | undefined> = { SUM: 'sum', COUNT: 'count', LATEST: 'last' };
    const problems: string[] = [];

    const meterMap = meters.map((meter) => {
      const linked = links.get(meter.slug);
      const stripeMeter = mirror.meters.find((m) => (linked ? m.id === linked : m.eventName === meter.slug));
      if (stripeMeter && formulaFor[meter.aggregation] !== stripeMeter.formula) {
        problems.push(
          `meter ${meter.slug} (${meter.aggregation}) cannot feed Stripe meter ${stripeMeter.id} (formula ${stripeMeter.formula})`,
        );
      }
      return {
        meter: meter.slug,
        aggregation: meter.aggregation,
        stripeMeterId: stripeMeter?.id ?? null,
        linkedBy: linked ? 'explicit' : stripeMeter ? 'event_name' : null,
      };
    });
    const linkedStripeMeters = new Set(meterMap.map((m) => m.stripeMeterId).filter(Boolean));
    for (const price of mirror.prices.filter((p) => p.usageType === 'metered' && p.meterId)) {
      if (!linkedStripeMeters.has(price.meterId)) {
        problems.push(
          `metered price ${price.id} uses Stripe meter ${price.meterId}, which no Meterline meter feeds`,
        );
      }
    }
    const customers = mapCustomers(
      mirror.customers.filter((c) => !c.deleted),
      subjects,
      options.subjectMetadataKey,
      problems,
    );
    const subscribed = new Set(
      mirror.subscriptions.filter((s) => s.status !== 'canceled').map((s) => s.customerId),
    );
    for (const c of customers.filter(
      (c) => c.subjectFrom === 'customer_id' && subscribed.has(c.customerId),
    )) {
      problems.push(
        `customer ${c.customerId} has no subject (metadata ${options.subjectMetadataKey} or the subjects API); its id is used`,
      );
    }
    return { meters: meterMap, customers, problems };
  }

  return {
    store,
    clientFor,
    sync,
    mapping,

    /** Records and logs why a reconcile failed; the connection shows it until a reconcile succeeds. */
    async recordSyncFailure(namespace: string, err: unknown) {
      const message = err instanceof Error ? err.message : String(err);
      const problem = isKeyRefused(err)
        ? `Stripe refused the stored key: ${message}`
        : `the last reconcile failed: ${message}`;
      deps.logger.warn({ err, namespace }, 'Stripe reconcile failed');
      await store.recordSyncFailure(namespace, [problem]);
      return [problem];
    },

    /** Links a Meterline meter to a Stripe meter explicitly (instead of by event_name = slug). */
    async linkMeter(namespace: string, meterSlug: string, stripeMeterId: string) {
      await deps.meters.get(namespace, meterSlug);
      await store.linkMeter(namespace, meterSlug, stripeMeterId);
      return mapping(namespace);
    },

    /** Validates the key and its permissions, stores it encrypted, sets up webhooks, backfills. */
    async connect(namespace: string, input: { apiKey: string; webhookSecret?: string }) {
      try {
        const secrets = requireBox();
        const stripe = createStripeClient(input.apiKey, options.apiBase);
        let account: Stripe.Account;
        try {
          account = await withStripeBackoff(() => stripe.accounts.retrieveCurrent());
        } catch (err) {
          if (err instanceof Stripe.errors.StripeAuthenticationError) {
            throw new AppError('ML_ERR_STRIPE_KEY_REJECTED', 'Stripe rejected the API key', {
              errors: [{ field: 'apiKey', message: 'invalid API key' }],
            });
          }
          throw err;
        }
        const missing: string[] = [];
        for (const { permission, probe } of PERMISSION_PROBES) {
          try {
            await withStripeBackoff(() => probe(stripe));
          } catch (err) {
            // 400 means the key got past authorization; anything else (still rate limited, 5xx) says
            // nothing about the permission and must not pass for "granted".
            if (isPermissionError(err)) missing.push(permission);
            else if (!(err instanceof Stripe.errors.StripeInvalidRequestError)) throw err;
          }
        }
        if (!input.webhookSecret && !options.publicUrl) {
          throw new AppError(
            'ML_ERR_HTTP_BAD_REQUEST',
            'PUBLIC_URL is not set: give a webhookSecret for an endpoint you manage',
            {
              errors: [{ field: 'webhookSecret', message: 'required when PUBLIC_URL is not configured' }],
            },
          );
        }
        let endpoint: Stripe.WebhookEndpoint | undefined;
        if (!input.webhookSecret) {
          try {
            endpoint = await withStripeBackoff(() =>
              stripe.webhookEndpoints.create({
                url: `${options.publicUrl?.replace(/\/$/, '')}/api/v1/stripe/webhooks/${namespace}`,
                enabled_events: [...CONSUMED_EVENTS],
                api_version: STRIPE_API_VERSION,
                description: `Meterline (${namespace})`,
              }),
            );
          } catch (err) {
            if (isPermissionError(err)) missing.push('webhook endpoints: write');
            else throw err;
          }
        }
        if (missing.length > 0) {
          if (endpoint) await stripe.webhookEndpoints.del(endpoint.id).catch(() => undefined);
          throw new AppError(
            'ML_ERR_STRIPE_PERMISSIONS',
            `the key lacks permissions: ${missing.join(', ')}`,
            {
              errors: missing.map((permission) => ({
                field: 'apiKey',
                message: `missing permission ${permission}`,
              })),
            },
          );
        }

        const previous = await store.getConnection(namespace);
        if (previous?.webhook_managed && previous.webhook_endpoint_id) {
          const old = createStripeClient(
            secrets.open(previous.api_key_encrypted, namespace),
            options.apiBase,
          );
          await old.webhookEndpoints
            .del(previous.webhook_endpoint_id)
            .catch((err) =>
              deps.logger.warn(
                { err, endpoint: previous.webhook_endpoint_id },
                'could not delete the previous webhook endpoint',
              ),
            );
        }
        const webhookSecret = endpoint?.secret ?? input.webhookSecret;
        await store.saveConnection({
          namespace,
          account_id: account.id,
          livemode: input.apiKey.includes('_live_'),
          api_key_encrypted: secrets.seal(input.apiKey, namespace),
          api_key_last4: input.apiKey.slice(-4),
          webhook_endpoint_id: endpoint?.id ?? null,
          webhook_secret_encrypted: webhookSecret ? secrets.seal(webhookSecret, namespace) : null,
          webhook_managed: endpoint !== undefined,
        });
        deps.logger.info({ namespace, account: account.id }, 'Stripe account connected');
        await sync(namespace);
        return this.describe(namespace);
      } catch (err) {
        throw asUpstreamError(err);
      }
    },

    async describe(namespace: string) {
      const row = await connection(namespace);
      return {
        accountId: row.account_id,
        livemode: row.livemode,
        apiKeyLast4: row.api_key_last4,
        webhook: {
          managed: row.webhook_managed,
          endpointId: row.webhook_endpoint_id,
          status: row.webhook_secret_encrypted ? 'configured' : 'missing',
        },
        lastSyncAt: row.last_sync_at?.toISOString() ?? null,
        problems: row.problems,
      };
    },

    async disconnect(namespace: string) {
      const row = await connection(namespace);
      if (row.webhook_managed && row.webhook_endpoint_id) {
        const stripe = await clientFor(namespace);
        await withStripeBackoff(() => stripe.webhookEndpoints.del(row.webhook_endpoint_id as string)).catch(
          (err) =>
            deps.logger.warn(
              { err },
              'could not delete the webhook endpoint; remove it in the Stripe dashboard',
            ),
        );
      }
      await store.deleteConnection(namespace);
    },

    /**
     * Verifies a webhook delivery (signature over the raw body, 300 s tolerance) and applies it once.
     * A namespace without a webhook secret is answered exactly like a bad signature, after the same
     * HMAC work against a throwaway secret, so strangers cannot learn which namespaces exist.
     */
    async receiveWebhook(namespace: string, rawBody: Buffer, signature: string | undefined) {
      const secrets = requireBox();
      const row = await store.getConnection(namespace);
      const secret = row?.webhook_secret_encrypted
        ? secrets.open(row.webhook_secret_encrypted, namespace)
        : UNKNOWN_NAMESPACE_SECRET;
      let event: Stripe.Event;
      try {
        event = Stripe.webhooks.constructEvent(rawBody, signature ?? '', secret, WEBHOOK_TOLERANCE_SECONDS);
        if (!row?.webhook_secret_encrypted) throw new Error('no webhook secret for this namespace');
      } catch (err) {
        // Why it failed is for our log only: the answer must not differ between the cases.
        deps.logger.info({ namespace, reason: (err as Error).message }, 'Stripe webhook refused');
        throw new AppError('ML_ERR_STRIPE_SIGNATURE', 'webhook signature rejected');
      }
      const stripe = createStripeClient(requireBox().open(row.api_key_encrypted, namespace), options.apiBase);
      const outcome = await applyStripeEvent(stripe, store, namespace, event, deps.logger);
      deps.logger.info({ namespace, event: event.id, type: event.type, outcome }, 'Stripe event received');
      return outcome;
    },
  };
}
