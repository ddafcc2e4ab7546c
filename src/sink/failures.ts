import { clickHouseErrorCode } from '../clickhouse/client.ts';

/**
 * Why storing failed, which decides what the sink does next:
 * - `data`: a property of the events themselves (ClickHouse refused them, a row cannot be built).
 *   Retrying cannot help; the culprits are isolated and dead-lettered, the rest stored.
 * - `outage`: ClickHouse unreachable, overloaded or misconfigured. The data is fine; the whole
 *   batch is retried with backoff, and nothing is ever dead-lettered for it.
 * - `unknown`: neither is certain. Retried a few times, then split like bad data, and a single
 *   event is dead-lettered only while ClickHouse answers a ping (see the sink).
 */
export type FailureKind = 'data' | 'outage' | 'unknown';

/** ClickHouse exception codes that mean "this data cannot be stored". */
const DATA_CODES = new Set([
  '6', // CANNOT_PARSE_TEXT
  '25', // CANNOT_PARSE_ESCAPE_SEQUENCE (e.g. a lone UTF-16 surrogate)
  '26', // CANNOT_PARSE_QUOTED_STRING
  '27', // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  '38', // CANNOT_PARSE_DATE
  '41', // CANNOT_PARSE_DATETIME
  '69', // ARGUMENT_OUT_OF_BOUND
  '70', // CANNOT_CONVERT_TYPE
  '72', // CANNOT_PARSE_NUMBER
  '117', // INCORRECT_DATA
  '128', // TOO_LARGE_ARRAY_SIZE
  '131', // TOO_LARGE_STRING_SIZE
]);

/** ClickHouse exception codes of a server that cannot take any write now, whatever the data. */
const OUTAGE_CODES = new Set([
  '16', // NO_SUCH_COLUMN_IN_TABLE: the schema is behind (migrate), not the data
  '60', // UNKNOWN_TABLE
  '81', // UNKNOWN_DATABASE
  '159', // TIMEOUT_EXCEEDED
  '164', // READONLY
  '192', // UNKNOWN_USER
  '193', // WRONG_PASSWORD
  '194', // REQUIRED_PASSWORD
  '195', // IP_ADDRESS_NOT_ALLOWED
  '202', // TOO_MANY_SIMULTANEOUS_QUERIES
  '203', // NO_FREE_CONNECTION
  '209', // SOCKET_TIMEOUT
  '210', // NETWORK_ERROR
  '225', // NO_ZOOKEEPER
  '236', // ABORTED
  '242', // TABLE_IS_READ_ONLY
  '243', // NOT_ENOUGH_SPACE
  '252', // TOO_MANY_PARTS
  '279', // ALL_CONNECTION_TRIES_FAILED
  '319', // UNKNOWN_STATUS_OF_INSERT
  '394', // QUERY_WAS_CANCELLED
  '497', // ACCESS_DENIED
  '516', // AUTHENTICATION_FAILED
  '999', // KEEPER_EXCEPTION
]);

/** Node's socket and DNS errors, and undici's: the server was not reached or the answer was lost. */
const NETWORK_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** @clickhouse/client's own messages for a request that timed out or was aborted. */
const NETWORK_MESSAGES =
  /^(Timeout error|socket hang up|The user aborted a request|The operation was aborted)/;

export function classifyFailure(err: unknown): FailureKind {
  // V8's "Invalid string length" and the like: a row or body that cannot exist in memory.
  if (err instanceof RangeError) return 'data';
  const code = clickHouseErrorCode(err);
  if (code !== undefined) {
    if (DATA_CODES.has(code)) return 'data';
    if (OUTAGE_CODES.has(code)) return 'outage';
    return 'unknown';
  }
  if (!(err instanceof Error)) return 'unknown';
  const errno = (err as NodeJS.ErrnoException).code;
  if (errno !== undefined && NETWORK_ERRNOS.has(errno)) return 'outage';
  if (err.name === 'AbortError' || NETWORK_MESSAGES.test(err.message)) return 'outage';
  if (err.cause !== undefined && err.cause !== err) {
    const cause = classifyFailure(err.cause);
    if (cause !== 'unknown') return cause;
  }
  return 'unknown';
}
