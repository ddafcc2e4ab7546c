// Stripe saves the status and body of the first request made with an Idempotency-Key and replays them for
// a retry with the same parameters; other parameters or another endpoint under the same key are refused.
// Only results of requests that ran are saved: validation failures and 429s are not.

export interface StoredResponse {
  status: number;
  body: string;
  requestId: string;
}

interface Entry {
  method: string;
  path: string;
  fingerprint: string;
  createdAt: number;
  response?: StoredResponse;
}

export type IdempotencyLookup =
  | { kind: 'new' }
  | { kind: 'replay'; response: StoredResponse }
  | { kind: 'in_flight' }
  | { kind: 'endpoint_mismatch'; path: string }
  | { kind: 'params_mismatch' };

export class IdempotencyStore {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly now: () => number,
    private readonly ttlSeconds: number,
  ) {}

  begin(scope: string, key: string, method: string, path: string, fingerprint: string): IdempotencyLookup {
    const id = `${scope}:${key}`;
    const existing = this.entries.get(id);
    if (existing && existing.createdAt + this.ttlSeconds <= this.now()) this.entries.delete(id);
    const entry = this.entries.get(id);
    if (!entry) {
      this.entries.set(id, { method, path, fingerprint, createdAt: this.now() });
      return { kind: 'new' };
    }
    if (entry.method !== method || entry.path !== path)
      return { kind: 'endpoint_mismatch', path: entry.path };
    if (entry.fingerprint !== fingerprint) return { kind: 'params_mismatch' };
    if (!entry.response) return { kind: 'in_flight' };
    return { kind: 'replay', response: entry.response };
  }

  /** Keeps the response for replay. */
  complete(scope: string, key: string, response: StoredResponse): void {
    const entry = this.entries.get(`${scope}:${key}`);
    if (entry) entry.response = response;
  }

  /** Forgets a key whose request did not run, so that a retry runs it. */
  abandon(scope: string, key: string): void {
    const entry = this.entries.get(`${scope}:${key}`);
    if (entry && !entry.response) this.entries.delete(`${scope}:${key}`);
  }
}
