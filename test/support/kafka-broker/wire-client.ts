import { createRequire } from 'node:module';
import { connect, type Socket } from 'node:net';

/**
 * A bare connection that sends single requests encoded by kafkajs's own protocol modules and
 * returns the decoded response without kafkajs's error handling, retries or sequence bookkeeping.
 * For tests that must send what the kafkajs client never would (a wrong producer sequence, a
 * commit from an old generation) or read error codes as the broker sent them.
 */
const require = createRequire(import.meta.url);

type KafkajsRequest = {
  request: { encode(): Promise<unknown> };
  response: { decode(data: Buffer): Promise<unknown> };
};
type KafkajsApi = { protocol(v: { version: number }): (options: object) => KafkajsRequest };
type CreateRequest = (options: { correlationId: number; clientId: string; request: object }) => Promise<{
  buffer: Buffer;
}>;

const createRequest = require('kafkajs/src/protocol/request.js') as CreateRequest;

/** Request names as kafkajs's protocol directories spell them. */
export type WireApi =
  | 'apiVersions'
  | 'fetch'
  | 'heartbeat'
  | 'initProducerId'
  | 'joinGroup'
  | 'listOffsets'
  | 'metadata'
  | 'offsetCommit'
  | 'produce'
  | 'syncGroup';

export type WireClient = {
  /** Sends one request; resolves with the response as kafkajs's decoder for that version reads it. */
  send<T>(api: WireApi, version: number, options?: object): Promise<T>;
  close(): void;
};

export async function connectWire(port: number, host = '127.0.0.1'): Promise<WireClient> {
  const socket: Socket = connect(port, host);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let correlationId = 0;
  let received: Buffer = Buffer.alloc(0);
  const waiting = new Map<number, { resolve(payload: Buffer): void; reject(err: Error): void }>();
  socket.on('data', (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
    while (received.length >= 4 && received.length >= 4 + received.readInt32BE(0)) {
      const size = received.readInt32BE(0);
      const id = received.readInt32BE(4);
      waiting.get(id)?.resolve(received.subarray(8, 4 + size));
      waiting.delete(id);
      received = received.subarray(4 + size);
    }
  });
  socket.on('close', () => {
    for (const { reject } of waiting.values()) reject(new Error('the broker closed the connection'));
    waiting.clear();
  });

  return {
    async send<T>(api: WireApi, version: number, options: object = {}): Promise<T> {
      const definition = require(`kafkajs/src/protocol/requests/${api}/index.js`) as KafkajsApi;
      const { request, response } = definition.protocol({ version })(options);
      const id = correlationId++;
      const frame = await createRequest({ correlationId: id, clientId: 'wire-client', request });
      const payload = new Promise<Buffer>((resolve, reject) => waiting.set(id, { resolve, reject }));
      socket.write(frame.buffer);
      return (await response.decode(await payload)) as T;
    },
    close() {
      socket.destroy();
    },
  };
}
