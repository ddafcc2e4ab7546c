import { startStripeFake } from './index.ts';

// `npm run stripe:fake`: the fake as a standalone server (clock under /_fake/clock/advance).
const port = Number(process.env.STRIPE_FAKE_PORT ?? 12111);
const host = process.env.STRIPE_FAKE_HOST ?? '127.0.0.1';
const fake = await startStripeFake({
  port,
  host,
  clockMode: process.env.STRIPE_FAKE_CLOCK === 'running' ? 'running' : 'frozen',
});
console.log(`Stripe fake listening on ${fake.url} (API ${fake.apiVersion}, account keys: any sk_test_…)`);
console.log(
  `  stripe-node: new Stripe('sk_test_…', { host: '${fake.host}', port: ${fake.port}, protocol: 'http' })`,
);
console.log(`  advance time: curl -X POST ${fake.url}/_fake/clock/advance -d '{"seconds":3600}'`);

const stop = async () => {
  await fake.close();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
