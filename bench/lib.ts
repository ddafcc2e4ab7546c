import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { appendFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { type Agent, request } from 'node:http';
import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { LogEvent } from '../src/events/event.ts';
import type { MeterlineProcess } from '../test/support/process.ts';

/** Progress goes to stderr: stdout carries only the one result line. */
export const note = (...args: unknown[]) => console.error('[bench]', ...args);

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export const now = () => performance.now();

/** Nearest-rank percentile of unsorted samples; null when there are none. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return round(sorted[rank - 1] as number);
}

export const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

export function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${raw}`);
  return n;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no free port')),
      );
    });
  });
}

/** Short commit of the work tree, and whether it has uncommitted changes (the numbers then are of those). */
export function gitState(cwd: string): { commit: string; dirty: boolean } {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, encoding: 'utf8' }).trim();
    const status = execFileSync('git', ['status', '--porcelain', '--untracked-files=no', '--', 'src'], {
      cwd,
      encoding: 'utf8',
    });
    return { commit, dirty: status.trim() !== '' };
  } catch {
    return { commit: 'unknown', dirty: false };
  }
}

export const EVENT_TYPE = 'ai-tokens';

export const MODELS = ['gpt-4o', 'gpt-4o-mini', 'claude-sonnet-4', 'llama-3.1-70b', 'mistral-large'];

/** A realistic metering event (~230 bytes as JSON): token usage of one LLM call by one of 1,000 customers. */
export function tokenEvent(time: string) {
  const input = 50 + Math.floor(Math.random() * 4000);
  return {
    specversion: '1.0',
    id: randomUUID(),
    source: 'llm-gateway',
    type: EVENT_TYPE,
    subject: `customer-${String(Math.floor(Math.random() * 1000)).padStart(4, '0')}`,
    time,
    data: {
      model: MODELS[Math.floor(Math.random() * MODELS.length)] as string,
      input_tokens: input,
      output_tokens: Math.floor(input * (0.05 + Math.random() * 0.5)),
    },
  };
}

export type TokenEvent = ReturnType<typeof tokenEvent>;

/** The event as the ingest service would put it on the log. */
export function toLogEvent(namespace: string, event: TokenEvent, ingestedAt: number): LogEvent {
  return {
    namespace,
    id: event.id,
    source: event.source,
    type: event.type,
    subject: event.subject,
    time: Date.parse(event.time),
    datacontenttype: null,
    dataschema: null,
    data: event.data,
    ingestedAt,
  };
}

/**
 * Pre-serialized request bodies. In every `probeEvery`-th request, and the last, the last event (the
 * one most likely to land in a later sink batch) is a probe: its subject is unique, so a query on the sort key's prefix
 * (namespace, type, subject) finds it in one granule and following it costs ClickHouse little.
 */
export type Batch = { body: Buffer; events: number; probe?: string };

export function makeBatches(total: number, batchSize: number, probeEvery: number): Batch[] {
  const batches: Batch[] = [];
  const time = new Date().toISOString();
  for (let sent = 0; sent < total; sent += batchSize) {
    const events = Array.from({ length: Math.min(batchSize, total - sent) }, () => tokenEvent(time));
    let probe: string | undefined;
    if (batches.length % probeEvery === 0 || sent + batchSize >= total) {
      probe = `probe-${String(batches.length).padStart(6, '0')}`;
      (events[events.length - 1] as TokenEvent).subject = probe;
    }
    batches.push({ body: Buffer.from(JSON.stringify(events)), events: events.length, probe });
  }
  return batches;
}

export type PostResult = { status: number; body: string };

/** A POST over a keep-alive agent (node:http costs the client less CPU than fetch). */
export function post(
  agent: Agent,
  url: URL,
  headers: Record<string, string>,
  body: Buffer,
): Promise<PostResult> {
  return send(agent, 'POST', url, headers, body);
}

/** A GET over a keep-alive agent. */
export function get(agent: Agent, url: URL, headers: Record<string, string>): Promise<PostResult> {
  return send(agent, 'GET', url, headers);
}

function send(
  agent: Agent,
  method: string,
  url: URL,
  headers: Record<string, string>,
  body?: Buffer,
): Promise<PostResult> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        agent,
        headers: body ? { ...headers, 'content-length': String(body.length) } : headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (body) req.end(body);
    else req.end();
  });
}

/** Polls until `probe` returns true; fails with `what` (and its detail) after `timeoutMs`. */
export async function waitUntil(
  probe: () => Promise<boolean>,
  what: () => string,
  timeoutMs: number,
  intervalMs = 50,
) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
}

/** SIGTERM, then SIGKILL if the process has not exited within `graceMs` (a --cpu-prof needs a clean exit). */
export async function stopProcess(p: MeterlineProcess, graceMs = 15_000): Promise<number | null> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return p.child.exitCode;
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
  try {
    return await p.exited;
  } finally {
    clearTimeout(timer);
  }
}

export const tail = (text: string, lines = 20) => text.trimEnd().split('\n').slice(-lines).join('\n');

const SERVERS: Record<string, string> = { 'clickhouse-serv': 'clickhouse', 'redis-server': 'redis' };

/**
 * CPU time per role from /proc (Linux only; elsewhere `read` returns null): the children by pid, the
 * servers found by process name (read-only), the bench itself by process.cpuUsage().
 */
export function cpuMeter(children: Record<string, (number | undefined)[]>) {
  let tick = 10;
  try {
    tick = 1000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  } catch {}
  const pids: Record<string, number[]> = {};
  for (const [role, list] of Object.entries(children)) pids[role] = list.filter((pid) => pid !== undefined);
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const role = SERVERS[readProc(`/proc/${entry}/comm`)?.trim() ?? ''];
      if (role) pids[role] = [...(pids[role] ?? []), Number(entry)];
    }
  } catch {
    return { read: () => null };
  }
  const ms = (pid: number) => {
    const stat = readProc(`/proc/${pid}/stat`);
    if (!stat) return 0;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * tick;
  };
  return {
    read(): Record<string, number> | null {
      const out: Record<string, number> = {};
      for (const [role, list] of Object.entries(pids))
        out[role] = list.reduce((sum, pid) => sum + ms(pid), 0);
      const self = process.cpuUsage();
      out.bench = (self.user + self.system) / 1000;
      return out;
    },
  };
}

function readProc(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Prints a benchmark's one JSON line and appends it to bench/results/<name>.jsonl. */
export function writeResult(name: string, result: Record<string, unknown>): void {
  const line = JSON.stringify(result);
  const dir = fileURLToPath(new URL('results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  appendFileSync(`${dir}${name}.jsonl`, `${line}\n`);
  process.stdout.write(`${line}\n`);
}
