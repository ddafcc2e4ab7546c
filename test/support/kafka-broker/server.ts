import type { Socket } from 'node:net';
import { APIS, type ApiHandler, ApiKey } from './apis/index.ts';
import { Reader } from './protocol/reader.ts';
import { Writer } from './protocol/writer.ts';
import type { BrokerState } from './state.ts';

const HANDLERS = new Map(APIS.map((api) => [api.key, api]));
const MAX_REQUEST_BYTES = 100 * 1024 * 1024; // Kafka's socket.request.max.bytes

export type ConnectionLog = (message: string) => void;

/**
 * Serves one client connection. Requests are size-prefixed frames with header v1 (api_key,
 * api_version, correlation_id, client_id); responses carry header v0 (correlation_id). As in
 * Kafka, a connection's requests are handled one at a time and answered in order, so a held
 * Fetch or JoinGroup delays later requests on the same connection (kafkajs fetches on its own).
 * A request for an API or version the broker does not speak closes the connection.
 */
export function serveConnection(socket: Socket, broker: BrokerState, log: ConnectionLog) {
  const closed = new AbortController();
  const clientHost = `/${socket.remoteAddress ?? 'unknown'}`;
  const queue: Buffer[] = [];
  let pending: Buffer = Buffer.alloc(0);
  let busy = false;

  socket.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 4) {
      const size = pending.readInt32BE(0);
      if (size < 0 || size > MAX_REQUEST_BYTES) {
        log(`closing ${clientHost}: request size ${size}`);
        socket.destroy();
        return;
      }
      if (pending.length < 4 + size) break;
      queue.push(pending.subarray(4, 4 + size));
      pending = pending.subarray(4 + size);
    }
    void drain();
  });
  socket.on('error', () => undefined); // a reset by the client is a normal way to go
  socket.on('close', () => closed.abort());

  async function drain() {
    if (busy) return;
    busy = true;
    try {
      for (let frame = queue.shift(); frame && !socket.destroyed; frame = queue.shift()) {
        const response = await handle(frame);
        if (response && !socket.destroyed) socket.write(response);
      }
    } catch (err) {
      log(`closing ${clientHost}: ${err instanceof Error ? err.message : String(err)}`);
      socket.destroy();
    } finally {
      busy = false;
    }
  }

  async function handle(frame: Buffer): Promise<Buffer | undefined> {
    const request = new Reader(frame);
    const apiKey = request.int16();
    const apiVersion = request.int16();
    const correlationId = request.int32();
    const clientId = request.nullableString() ?? '';
    const api: ApiHandler | undefined = HANDLERS.get(apiKey);
    if (!api) throw new Error(`unsupported API key ${apiKey}`);
    // ApiVersions is answered in any version (see apis/api-versions.ts); others must be advertised.
    if (apiKey !== ApiKey.ApiVersions && (apiVersion < api.minVersion || apiVersion > api.maxVersion)) {
      throw new Error(`unsupported ${api.name} v${apiVersion}`);
    }
    log(`${clientId} ${api.name} v${apiVersion} #${correlationId}`);
    const body = await api.handle(request, {
      apiVersion,
      clientId,
      clientHost,
      broker,
      apis: APIS,
      closed: closed.signal,
      log,
    });
    if (!body) return undefined;
    const head = new Writer().int32(body.size + 4).int32(correlationId);
    return Buffer.concat([head.toBuffer(), body.toBuffer()]);
  }
}
