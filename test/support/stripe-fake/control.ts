import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StripeFake } from './index.ts';

/**
 * A small JSON control API under /_fake/ for when the fake runs as its own process (npm run stripe:fake):
 * the clock, faults and state views that in-process tests reach through the StripeFake object.
 */
export function controlApi(fake: StripeFake, advanceTo: (t: number) => Promise<void>) {
  return async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://stripe-fake.invalid');
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const send = (status: number, body: unknown) => {
      const json = JSON.stringify(body, null, 2);
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(json);
    };
    try {
      const body = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
      const route = `${req.method} ${url.pathname}`;
      switch (route) {
        case 'GET /_fake/clock':
          return send(200, { now: fake.clock.now() });
        case 'POST /_fake/clock/advance':
          if (typeof body.to === 'number') await advanceTo(body.to);
          else await fake.clock.advance(Number(body.seconds ?? 0));
          return send(200, { now: fake.clock.now() });
        case 'POST /_fake/faults/fail':
          fake.faults.failNext(Number(body.count ?? 1), {
            status: Number(body.status ?? 500),
            afterExecute: body.afterExecute === true,
            match: typeof body.path === 'string' ? { path: body.path } : undefined,
          });
          return send(200, { ok: true });
        case 'POST /_fake/faults/drop':
          fake.faults.dropConnections(Number(body.count ?? 1), { afterExecute: body.afterExecute === true });
          return send(200, { ok: true });
        case 'POST /_fake/faults/slow':
          fake.faults.slow(Number(body.ms ?? 0));
          return send(200, { ok: true });
        case 'POST /_fake/faults/clear':
          fake.faults.clear();
          return send(200, { ok: true });
        case 'POST /_fake/rate_limits':
          fake.rateLimits.configure(body as never);
          return send(200, fake.rateLimits.config);
        case 'GET /_fake/meter_events':
          return send(200, fake.state.meterEvents(url.searchParams.get('meter') ?? undefined));
        case 'GET /_fake/invoices':
          return send(200, fake.state.invoices({ customer: url.searchParams.get('customer') ?? undefined }));
        case 'GET /_fake/deliveries':
          return send(200, fake.webhooks.deliveries());
        case 'GET /_fake/requests':
          return send(200, fake.state.requests());
        default:
          return send(404, { error: `unknown control route ${route}` });
      }
    } catch (err) {
      return send(400, { error: String(err) });
    }
  };
}
