import type { Job } from 'bullmq';
import type pg from 'pg';
import { pino } from 'pino';
import type Stripe from 'stripe';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stripeReconcileProcessor } from '../jobs/stripe-reconcile.ts';
import { createMeterService } from '../src/meters/service.ts';
import { createStripeClient } from '../src/stripe/client.ts';
import { createStripeService } from '../src/stripe/service.ts';
import { createStripeStore, type StripeStore } from '../src/stripe/store.ts';
import { applyStripeEvent, reconcileMirror } from '../src/stripe/sync.ts';
import { createSubjectStore } from '../src/subjects/store.ts';
import { createTestEnv, eventually, TEST_ENCRYPTION_KEY, type TestEnv } from './support/env.ts';
import { type StripeFake, startStripeFake } from './support/stripe-fake/index.ts';

// The mirror's races, played out deterministically: a test wraps one store or client method to
// run the competing change at the exact point where it used to do harm.

const silent = pino({ level: 'silent' });
let env: TestEnv;
let store: StripeStore;
let fake: StripeFake;
let admin: Stripe;
/** Meterline's own client, as the service builds it. */
let stripe: Stripe;
const clock = () => new Date(fake.clock.now() * 1000);

beforeAll(async () => {
  env = await createTestEnv();
  store = createStripeStore(env.db);
});
afterAll(async () => {
  await env.cleanup();
});

// A fresh Stripe account per test: a reconcile reads all of it.
async function freshStripe() {
  fake = await startStripeFake();
  admin = fake.stripe('sk_test_admin');
  stripe = createStripeClient('sk_test_meterline', fake.url);
}
afterEach(async () => {
  await fake.close();
});

/** The newest event of `type` about object `id`, as Stripe would deliver it. */
function lastEvent(type: string, id: string): Stripe.Event {
  const events = fake.state.events(type).filter((e) => (e.data.object as { id: string }).id === id);
  const event = events[events.length - 1];
  if (!event) throw new Error(`no ${type} event for ${id}`);
  return event;
}

const apply = (ns: string, event: Stripe.Event, via: StripeStore = store, client: Stripe = stripe) =>
  applyStripeEvent(client, via, ns, event, silent);

async function customerRow(ns: string, id: string) {
  return (await store.readMirror(ns)).customers.find((c) => c.id === id);
}

/** The store, with `meanwhile` run after the reconcile's read and before its write. */
function afterRead(meanwhile: () => Promise<void>): StripeStore {
  return {
    ...store,
    inTransaction: async <T>(work: (client: pg.PoolClient) => Promise<T>) => {
      await meanwhile();
      return store.inTransaction(work);
    },
  };
}

function stripeService() {
  return createStripeService(
    {
      db: env.db,
      meters: createMeterService({ db: env.db, ch: env.ch }, { maxWindows: 10 }),
      subjects: createSubjectStore(env.db),
      logger: silent,
    },
    {
      apiBase: fake.url,
      subjectMetadataKey: 'meterline_subject',
      encryptionKey: TEST_ENCRYPTION_KEY,
      clock,
    },
  );
}

describe('reconcile against webhooks', () => {
  it('keeps a webhook state newer than what the slow read saw', async () => {
    await freshStripe();
    const ns = 'newer-webhook';
    const customer = await admin.customers.create({ name: 'Before' });
    await reconcileMirror(stripe, store, ns, clock);

    await fake.clock.advance(10);
    const racing = afterRead(async () => {
      await fake.clock.advance(1);
      await admin.customers.update(customer.id, { name: 'After' });
      expect(await apply(ns, lastEvent('customer.updated', customer.id))).toBe('applied');
    });
    await reconcileMirror(stripe, racing, ns, clock);
    expect(await customerRow(ns, customer.id)).toMatchObject({ name: 'After', deleted: false });
  });

  it('keeps an object a webhook created after the read started', async () => {
    await freshStripe();
    const ns = 'created-meanwhile';
    let created: Stripe.Customer | undefined;
    const racing = afterRead(async () => {
      await fake.clock.advance(1);
      created = await admin.customers.create({ name: 'Newcomer' });
      expect(await apply(ns, lastEvent('customer.created', created.id))).toBe('applied');
    });
    await reconcileMirror(stripe, racing, ns, clock);
    expect(await customerRow(ns, created?.id ?? '')).toMatchObject({ name: 'Newcomer', deleted: false });
  });

  it('keeps deleted customers as tombstones, so that a late older update cannot bring them back', async () => {
    await freshStripe();
    const ns = 'tombstones';
    const announced = await admin.customers.create({ name: 'Announced' });
    const silentlyGone = await admin.customers.create({ name: 'Silently gone' });
    await reconcileMirror(stripe, store, ns, clock);

    await fake.clock.advance(1);
    await admin.customers.update(announced.id, { name: 'Announced, renamed' });
    await admin.customers.update(silentlyGone.id, { name: 'Silently gone, renamed' });
    await fake.clock.advance(1);
    await admin.customers.del(announced.id);
    expect(await apply(ns, lastEvent('customer.deleted', announced.id))).toBe('applied');
    await admin.customers.del(silentlyGone.id); // its customer.deleted is never delivered
    await fake.clock.advance(1);
    await reconcileMirror(stripe, store, ns, clock);

    // The updates from before the deletions arrive last.
    for (const customer of [announced, silentlyGone]) {
      expect(await apply(ns, lastEvent('customer.updated', customer.id))).toBe('stale');
      expect(await customerRow(ns, customer.id)).toMatchObject({ deleted: true, name: null });
    }
  });

  it('does not let a late, older subscription event undo a newer price', async () => {
    await freshStripe();
    const ns = 'price-guard';
    const product = await admin.products.create({ name: 'Seats' });
    const price = await admin.prices.create({
      product: product.id,
      currency: 'usd',
      unit_amount: 500,
      recurring: { interval: 'month' },
    });
    const first = await admin.subscriptions.create({
      customer: (await admin.customers.create({ name: 'One' })).id,
      items: [{ price: price.id }],
    });
    const second = await admin.subscriptions.create({
      customer: (await admin.customers.create({ name: 'Two' })).id,
      items: [{ price: price.id }],
    });
    await fake.clock.advance(1);
    await admin.prices.update(price.id, { active: false });
    await admin.subscriptions.update(first.id, { metadata: { touched: 'yes' } });

    expect(await apply(ns, lastEvent('customer.subscription.updated', first.id))).toBe('applied');
    const archived = { id: price.id, active: false };
    expect((await store.readMirror(ns)).prices).toEqual([expect.objectContaining(archived)]);
    // The second subscription's creation, from before the archiving, arrives last.
    expect(await apply(ns, lastEvent('customer.subscription.created', second.id))).toBe('applied');
    expect((await store.readMirror(ns)).prices).toEqual([expect.objectContaining(archived)]);
  });
});

describe('concurrent deliveries', () => {
  it('serialises two same-second deliveries about a new object, ending in Stripe state', async () => {
    await freshStripe();
    const ns = 'same-second';
    const customer = await admin.customers.create({ name: 'Created' });
    await admin.customers.update(customer.id, { name: 'Updated' }); // the same second: the clock is frozen

    // customer.created reads "no row" and pauses there...
    let createdHasRead!: () => void;
    const createdRead = new Promise<void>((resolve) => {
      createdHasRead = resolve;
    });
    let resume!: () => void;
    const paused = new Promise<void>((resolve) => {
      resume = resolve;
    });
    const createdDone = apply(ns, lastEvent('customer.created', customer.id), {
      ...store,
      sourceAt: async (...args: Parameters<StripeStore['sourceAt']>) => {
        const at = await store.sourceAt(...args);
        createdHasRead();
        await paused;
        return at;
      },
    });
    await createdRead;
    // ...while customer.updated runs: to the end if nothing serialises them, else up to the lock.
    let updatedAtLock!: () => void;
    const reachedLock = new Promise<void>((resolve) => {
      updatedAtLock = resolve;
    });
    const updatedDone = apply(ns, lastEvent('customer.updated', customer.id), {
      ...store,
      lockObject: async (...args: Parameters<StripeStore['lockObject']>) => {
        updatedAtLock();
        return store.lockObject(...args);
      },
    });
    await Promise.race([updatedDone, reachedLock]);
    resume();

    expect(await Promise.all([createdDone, updatedDone])).toEqual(['applied', 'applied']);
    expect(await customerRow(ns, customer.id)).toMatchObject({ name: 'Updated' });
  });

  it('re-fetches a same-second update with no PostgreSQL transaction open', async () => {
    await freshStripe();
    const ns = 'refetch-outside';
    const customer = await admin.customers.create({ name: 'Created' });
    await admin.customers.update(customer.id, { name: 'Updated' });
    expect(await apply(ns, lastEvent('customer.created', customer.id))).toBe('applied');

    const client = createStripeClient('sk_test_meterline', fake.url);
    const retrieve = client.customers.retrieve.bind(client.customers);
    const openDuringFetch: number[] = [];
    client.customers.retrieve = (async (...args: Parameters<typeof retrieve>) => {
      const { rows } = await env.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
         WHERE datname = current_database() AND state LIKE 'idle in transaction%'`,
      );
      openDuringFetch.push(rows[0]?.n ?? -1);
      return retrieve(...args);
    }) as typeof client.customers.retrieve;

    expect(await apply(ns, lastEvent('customer.updated', customer.id), store, client)).toBe('applied');
    expect(openDuringFetch).toEqual([0]);
    expect(await customerRow(ns, customer.id)).toMatchObject({ name: 'Updated' });
  });

  it('makes a delivery racing a reconcile wait for it, and end in Stripe state', async () => {
    await freshStripe();
    const ns = 'racing-reconcile';
    const customer = await admin.customers.create({ name: 'Created' });
    await admin.customers.update(customer.id, { name: 'Updated' }); // the same second: the clock is frozen

    // customer.created arrives while the reconcile has written "Updated" and not yet committed.
    let delivery: Promise<string> | undefined;
    const racing: StripeStore = {
      ...store,
      putCustomer: async (...args: Parameters<StripeStore['putCustomer']>) => {
        await store.putCustomer(...args);
        let atLock!: () => void;
        const reachedLock = new Promise<void>((resolve) => {
          atLock = resolve;
        });
        delivery = apply(ns, lastEvent('customer.created', customer.id), {
          ...store,
          lockObject: async (...lockArgs: Parameters<StripeStore['lockObject']>) => {
            atLock();
            return store.lockObject(...lockArgs);
          },
        });
        await reachedLock;
        // Let the reconcile commit only once the delivery waits on a lock (the mirror's, or else the row's).
        await eventually(async () => {
          const { rows } = await env.db.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE NOT l.granted AND a.datname = current_database()`,
          );
          return (rows[0]?.n ?? 0) > 0;
        }, 'the delivery to wait on a lock');
      },
    };
    await reconcileMirror(stripe, racing, ns, clock);
    expect(await delivery).toBe('applied');
    expect(await customerRow(ns, customer.id)).toMatchObject({ name: 'Updated' });
  });

  it('answers a redelivered event from the ledger, without asking Stripe', async () => {
    await freshStripe();
    const ns = 'redelivered';
    const customer = await admin.customers.create({ name: 'Once' });
    const created = lastEvent('customer.created', customer.id);
    expect(await apply(ns, created)).toBe('applied');
    // Its time equals the stored row's, which alone would mean "re-fetch"; Stripe is down meanwhile.
    fake.faults.failNext(10, { status: 500, type: 'api_error', match: { path: /\/v1\/customers\// } });
    expect(await apply(ns, created)).toBe('duplicate');
  });
});

describe('the reconcile job', () => {
  it('records a failing namespace on its connection and goes on with the others', async () => {
    await freshStripe();
    const service = stripeService();
    for (const ns of ['job-a', 'job-b']) {
      await service.connect(ns, { apiKey: 'sk_test_meterline_jobs', webhookSecret: 'whsec_job' });
    }
    // job-a's stored key was copied from job-b's row: it does not open there.
    await env.db.query(
      `UPDATE stripe_connections SET api_key_encrypted =
         (SELECT api_key_encrypted FROM stripe_connections WHERE namespace = 'job-b')
       WHERE namespace = 'job-a'`,
    );
    const newcomer = await admin.customers.create({ name: 'Newcomer' });
    await fake.clock.advance(1);

    const processor = stripeReconcileProcessor(service);
    const problems = await processor({ data: {} } as Job);
    expect(problems['job-a']).toEqual([expect.stringMatching(/^the last reconcile failed: /)]);
    expect((await service.describe('job-a')).problems).toEqual(problems['job-a']);
    expect(await customerRow('job-b', newcomer.id)).toMatchObject({ name: 'Newcomer' });

    // A job for the failing namespace alone fails, so that BullMQ retries it.
    await expect(processor({ data: { namespace: 'job-a' } } as Job)).rejects.toThrow();
  });
});

describe('mapping conflicts', () => {
  it('names both sides of every conflicting claim', async () => {
    await freshStripe();
    const ns = 'conflicts';
    const [twinA, twinB] = [
      await admin.customers.create({ metadata: { meterline_subject: 'twin' } }),
      await admin.customers.create({ metadata: { meterline_subject: 'twin' } }),
    ].sort((a, b) => (a.id < b.id ? -1 : 1));
    const shared = await admin.customers.create({ name: 'Shared' });
    const disputed = await admin.customers.create({ metadata: { meterline_subject: 'from-metadata' } });
    await createSubjectStore(env.db).upsert(ns, [
      { key: 'claimant-1', stripeCustomerId: shared.id },
      { key: 'claimant-2', stripeCustomerId: shared.id },
      { key: 'from-subjects', stripeCustomerId: disputed.id },
    ]);

    const service = stripeService();
    await service.connect(ns, { apiKey: 'sk_test_conflicts_key', webhookSecret: 'whsec_conflicts' });
    const expected = [
      `subject twin is claimed by several Stripe customers: ${twinA?.id} (by metadata meterline_subject) and ${twinB?.id} (by metadata meterline_subject)`,
      `subjects claimant-1 and claimant-2 name the same Stripe customer ${shared.id} in the subjects API; claimant-1 is used`,
      `Stripe customer ${disputed.id} has metadata meterline_subject=from-metadata, but the subjects API links it to subject from-subjects; the metadata wins`,
    ];
    expect((await service.mapping(ns)).problems).toEqual(expect.arrayContaining(expected));
    expect((await service.describe(ns)).problems).toEqual(expect.arrayContaining(expected));
  });
});
