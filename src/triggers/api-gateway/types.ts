/**
 * API Gateway emulation as Nimbus keeps it: an API (REST or HTTP), its one stage, and its
 * routes to functions. Made by `nimbus deploy --template` from SAM `Api` / `HttpApi`
 * events, or directly with `PUT /nimbus/v1/apis/<api-id>`.
 */

export type ApiProtocol = 'REST' | 'HTTP';
export type PayloadFormatVersion = '1.0' | '2.0';

export interface ApiRoute {
  /** `GET /items/{id}`, `ANY /{proxy+}`, or `$default` (HTTP APIs). */
  routeKey: string;
  functionName: string;
  qualifier?: string;
  /** REST APIs always send 1.0; HTTP APIs 2.0 unless a route asks for 1.0. */
  payloadFormatVersion: PayloadFormatVersion;
}

export interface ApiRecord {
  /** 10 lower-case letters and digits, the first label of the API's host. */
  apiId: string;
  name: string;
  protocol: ApiProtocol;
  /** REST: a stage name (`Prod`, SAM's default); HTTP: `$default` or a stage name. */
  stageName: string;
  stageVariables: Record<string, string>;
  /** REST APIs: media types whose bodies travel as base64 (`image/png`, `image/*`, `*\/*`). */
  binaryMediaTypes: string[];
  routes: ApiRoute[];
  createdTime: string;
  lastUpdatedTime: string;
}
