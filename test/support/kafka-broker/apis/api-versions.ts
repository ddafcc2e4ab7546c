import { ErrorCode } from '../protocol/errors.ts';
import { Writer } from '../protocol/writer.ts';
import { type ApiHandler, ApiKey } from './types.ts';

/**
 * ApiVersions v0-2. A client asking in a version above 2 gets the v0 layout with
 * UNSUPPORTED_VERSION and the list, as Kafka answers, so it can retry in one we speak.
 */
export const apiVersions: ApiHandler = {
  key: ApiKey.ApiVersions,
  name: 'ApiVersions',
  minVersion: 0,
  maxVersion: 2,
  handle(_request, { apiVersion, apis }) {
    const supported = apiVersion <= 2;
    const response = new Writer()
      .int16(supported ? ErrorCode.NONE : ErrorCode.UNSUPPORTED_VERSION)
      .array(apis, (w, api) => w.int16(api.key).int16(api.minVersion).int16(api.maxVersion));
    if (supported && apiVersion >= 1) response.int32(0); // throttle_time_ms
    return response;
  },
};
