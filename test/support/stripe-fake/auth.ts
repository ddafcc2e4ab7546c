import { invalidRequest, StripeFakeError } from './errors.ts';

export type KeyMode = 'test' | 'live';
export type Access = 'read' | 'write';

/** Permission areas of a restricted key, named after the Dashboard's restricted-key resources. */
export type PermissionResource =
  | 'account'
  | 'customers'
  | 'products'
  | 'prices'
  | 'subscriptions'
  | 'invoices'
  | 'invoice_items'
  | 'credit_notes'
  | 'billing_meters'
  | 'meter_events'
  | 'webhook_endpoints'
  | 'events';

/** `write` implies `read`; a resource left out is `none`. */
export type Permissions = Partial<Record<PermissionResource, Access>>;

export interface KeyConfig {
  mode?: KeyMode;
  /** Only for restricted (`rk_`) keys; a secret key always has full access. */
  permissions?: Permissions;
}

export interface ResolvedKey {
  key: string;
  mode: KeyMode;
  permissions: Permissions | 'all';
}

export class KeyRing {
  private readonly keys = new Map<string, KeyConfig>();
  private readonly revoked = new Set<string>();

  constructor(
    private readonly acceptAnyTestKey: boolean,
    readonly accountId: string,
  ) {}

  add(key: string, config: KeyConfig = {}): void {
    this.keys.set(key, config);
    this.revoked.delete(key);
  }

  revoke(key: string): void {
    this.revoked.add(key);
  }

  /** The key's mode, without authenticating (for rate-limit bookkeeping of rejected calls). */
  resolve(authorization: string | undefined): ResolvedKey {
    const key = parseAuthorization(authorization);
    if (!key) {
      throw new StripeFakeError(401, {
        type: 'invalid_request_error',
        message:
          'You did not provide an API key. You need to provide your API key in the Authorization header, ' +
          "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
      });
    }
    if (this.revoked.has(key)) {
      throw invalidRequest(`Expired API Key provided: ${redact(key)}`, {
        code: 'api_key_expired',
        status: 401,
      });
    }
    const config = this.keys.get(key);
    const shape = /^(sk|rk)_(test|live)_[A-Za-z0-9_]+$/.exec(key);
    if (!config && !(this.acceptAnyTestKey && shape?.[2] === 'test')) {
      throw invalidRequest(`Invalid API Key provided: ${redact(key)}`, { status: 401 });
    }
    const mode: KeyMode = config?.mode ?? (shape?.[2] === 'live' ? 'live' : 'test');
    const restricted = key.startsWith('rk_');
    return { key, mode, permissions: restricted && config?.permissions ? config.permissions : 'all' };
  }

  check(key: ResolvedKey, resource: PermissionResource, access: Access): void {
    if (key.permissions === 'all') return;
    const granted = key.permissions[resource];
    if (granted === 'write' || granted === access) return;
    // Stripe sends this with type invalid_request_error; the 403 status makes stripe-node raise
    // StripePermissionError.
    throw new StripeFakeError(403, {
      type: 'invalid_request_error',
      message:
        `The provided key '${redact(key.key)}' does not have the required permissions for this endpoint ` +
        `on account '${this.accountId}'. Having the 'rak_${resource}_${access}' permission would allow ` +
        'this request to continue.',
    });
  }
}

function parseAuthorization(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const bearer = /^Bearer\s+(\S+)$/i.exec(header);
  if (bearer) return bearer[1];
  const basic = /^Basic\s+(\S+)$/i.exec(header);
  if (basic?.[1]) return Buffer.from(basic[1], 'base64').toString('utf8').split(':')[0] || undefined;
  return undefined;
}

export function redact(key: string): string {
  const prefix = /^(sk|rk)_(test|live)_/.exec(key)?.[0] ?? '';
  return `${prefix}${'*'.repeat(Math.max(0, key.length - prefix.length - 4))}${key.slice(-4)}`;
}
