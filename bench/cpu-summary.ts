/**
 * Summarizes a .cpuprofile (from bench/cpu-profile.mjs): busy vs idle time, the top functions by
 * self time, and the project's functions (src/) by inclusive time, optionally per 1000 events.
 *   node --import tsx bench/cpu-summary.ts /tmp/prof/sink-123.cpuprofile [events] [top]
 */
import { readFileSync } from 'node:fs';

type Node = {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
};
type Profile = { nodes: Node[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number };

const [file, eventsArg, topArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: cpu-summary.ts <file.cpuprofile> [events] [top]');
  process.exit(2);
}
const events = Number(eventsArg ?? 0);
const top = Number(topArg ?? 25);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const ROOT = new URL('..', import.meta.url).pathname;
function label(n: Node): string {
  const { functionName, url, lineNumber } = n.callFrame;
  const where = url
    .replace(/^file:\/\//, '')
    .replace(ROOT, '')
    .replace(/^.*node_modules\//, '~/');
  return `${functionName || '(anonymous)'} ${where ? `${where}:${lineNumber + 1}` : ''}`.trim();
}

const self = new Map<string, number>();
const inclusive = new Map<string, number>();
let total = 0;
profile.samples.forEach((id, i) => {
  const dt = (profile.timeDeltas[i] ?? 0) / 1000; // µs -> ms
  total += dt;
  const node = byId.get(id);
  if (!node) return;
  self.set(label(node), (self.get(label(node)) ?? 0) + dt);
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const n = byId.get(cur);
    if (!n) break;
    const l = label(n);
    if (seen.has(l)) continue;
    seen.add(l);
    inclusive.set(l, (inclusive.get(l) ?? 0) + dt);
  }
});

const idle = self.get('(idle)') ?? 0;
const per1000 = (ms: number) =>
  events > 0 ? ` ${((ms / events) * 1000).toFixed(2).padStart(8)} ms/1000ev` : '';
const line = (ms: number, name: string) =>
  `${ms.toFixed(0).padStart(8)} ms ${((ms / (total - idle)) * 100).toFixed(1).padStart(5)}%${per1000(ms)}  ${name}`;

console.log(
  `${file}: ${total.toFixed(0)} ms sampled, ${idle.toFixed(0)} ms idle, busy ${(total - idle).toFixed(0)} ms`,
);
console.log(line(total - idle, 'BUSY (all but idle)'));
console.log('\n-- top self time --');
for (const [name, ms] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(line(ms, name));
console.log('\n-- inclusive time, project functions (src/) --');
for (const [name, ms] of [...inclusive]
  .filter(([name]) => name.includes('src/'))
  .sort((a, b) => b[1] - a[1])
  .slice(0, top))
  console.log(line(ms, name));
