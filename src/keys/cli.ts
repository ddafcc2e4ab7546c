import { parseArgs } from 'node:util';
import type { Db } from '../db/client.ts';
import { createKeyService, KEY_ID_PATTERN } from './service.ts';

/** Where the command writes: the key alone on stdout (scripts capture it), everything else on stderr. */
export type Out = { stdout: (line: string) => void; stderr: (line: string) => void };

/** A PostgreSQL failure as one line an operator can act on; undefined when it is not a known case. */
export function describeDbError(err: unknown, databaseUrl: string): string | undefined {
  const e = err as { code?: string; message?: string };
  const url = safeUrl(databaseUrl);
  // 3D000 invalid_catalog_name, 42P01 undefined_table: `meterline migrate` creates both.
  if (e?.code === '3D000' || e?.code === '42P01') {
    return `PostgreSQL database ${url.database} is not set up: run \`meterline migrate\` first (DATABASE_URL)`;
  }
  if (e?.code === 'ECONNREFUSED' || e?.code === 'ENOTFOUND' || e?.code === 'ETIMEDOUT') {
    return `cannot reach PostgreSQL at ${url.host} (${e.code}); check DATABASE_URL and that the server runs`;
  }
  if (e?.code === '28P01' || e?.code === '28000') {
    return `PostgreSQL refused the login (${e.message}); check DATABASE_URL`;
  }
  return undefined;
}

/** Host and database of a connection URL, never its password. */
function safeUrl(databaseUrl: string) {
  try {
    const u = new URL(databaseUrl);
    return { host: u.host || 'localhost', database: decodeURIComponent(u.pathname.replace(/^\//, '')) };
  } catch {
    return { host: '(unparsable DATABASE_URL)', database: '(unparsable DATABASE_URL)' };
  }
}

const oneLine = (text: string) => text.replace(/[\t\r\n]+/g, ' ');

/** `meterline keys …`: returns the exit code. */
export async function runKeysCommand(db: Db, args: string[], out: Out, usage: string): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(args);
  } catch (err) {
    out.stderr((err as Error).message);
    out.stderr(usage);
    return 2;
  }
  const { positionals, values } = parsed;
  const keys = createKeyService(db);
  const [sub, ...rest] = positionals;

  if (sub === 'create' && values.namespace && rest.length === 0) {
    const created = await keys.create(values.namespace, values.description);
    // The key itself goes to stdout alone so scripts can capture it; it is never shown again.
    out.stderr(`API key for namespace ${created.namespace} (id ${created.id}); store it now:`);
    out.stdout(created.key);
    return 0;
  }

  if (sub === 'list' && values.namespace && rest.length === 0) {
    const rows = await keys.list(values.namespace);
    out.stdout(['id', 'prefix', 'description', 'created', 'revoked'].join('\t'));
    for (const r of rows) {
      out.stdout(
        [
          r.id,
          r.prefix,
          oneLine(r.description),
          r.createdAt.toISOString(),
          r.revokedAt?.toISOString() ?? '-',
        ].join('\t'),
      );
    }
    if (rows.length === 0) out.stderr(`namespace ${values.namespace} has no API keys`);
    return 0;
  }

  const id = values.id ?? (rest.length === 1 ? rest[0] : undefined);
  if (sub === 'revoke' && id && !(values.id && rest.length > 0)) {
    if (!KEY_ID_PATTERN.test(id)) {
      out.stderr(`${JSON.stringify(id)} is not a key id (the numbers \`keys list\` prints)`);
      return 2;
    }
    const revoked = await keys.revoke(id);
    if (!revoked) {
      out.stderr(`no API key with id ${id}`);
      return 1;
    }
    out.stderr(
      revoked.alreadyRevoked
        ? `API key ${id} (${revoked.prefix}…, namespace ${revoked.namespace}) was already revoked at ${revoked.revokedAt.toISOString()}`
        : `API key ${id} (${revoked.prefix}…, namespace ${revoked.namespace}) revoked; every api process refuses it within 1 s`,
    );
    return 0;
  }

  out.stderr(usage);
  return 2;
}

function parse(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    options: {
      namespace: { type: 'string' },
      description: { type: 'string', default: '' },
      id: { type: 'string' },
    },
  });
}
