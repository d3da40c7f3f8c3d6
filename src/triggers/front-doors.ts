/**
 * Which front door a request is for, decided before the control API sees it:
 *
 *   <url-id>.lambda-url.<region>.localhost   or /nimbus/urls/<url-id>/...   function URLs
 *   <api-id>.execute-api.<region>.localhost  or /nimbus/apis/<api-id>/...   API Gateway
 *   <name>.elb.<region>.localhost            or /nimbus/albs/<name>/...     ALB targets
 *
 * Subdomains of `localhost` resolve to the loopback address (RFC 6761 §6.3), so the
 * host names work in curl and browsers with no DNS set-up; the path prefixes serve
 * clients that cannot set a Host header.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../logging/logger.ts';
import type { FunctionUrlDoor } from './function-urls/url-door.ts';
import type { ApiGatewayDoor } from './api-gateway/api-door.ts';
import type { AlbDoor } from './alb/alb-door.ts';

export interface FrontDoorsOptions {
  region: string;
  urls: FunctionUrlDoor;
  apis: ApiGatewayDoor;
  albs: AlbDoor;
  logger: Logger;
}

type Door = 'urls' | 'apis' | 'albs';

export class FrontDoors {
  readonly #o: FrontDoorsOptions;
  readonly #hosts: Array<{ door: Door; pattern: RegExp }>;

  constructor(options: FrontDoorsOptions) {
    this.#o = options;
    const region = options.region.replace(/[^a-z0-9-]/g, '');
    this.#hosts = [
      { door: 'urls', pattern: new RegExp(`^([a-z0-9]{32})\\.lambda-url\\.${region}\\.localhost\\.?(?::\\d+)?$`, 'i') },
      { door: 'apis', pattern: new RegExp(`^([a-z0-9]{10})\\.execute-api\\.${region}\\.localhost\\.?(?::\\d+)?$`, 'i') },
      { door: 'albs', pattern: new RegExp(`^([a-z0-9-]{1,32})\\.elb\\.${region}\\.localhost\\.?(?::\\d+)?$`, 'i') },
    ];
  }

  /** The ApiServer hook: true when a front door took the request. */
  readonly hook = (req: IncomingMessage, res: ServerResponse): boolean => {
    const host = req.headers.host;
    if (host !== undefined && host.includes('.localhost')) {
      for (const { door, pattern } of this.#hosts) {
        const m = pattern.exec(host);
        if (m) return this.#serve(door, req, res, m[1]!.toLowerCase(), '');
      }
    }
    const url = req.url ?? '';
    if (url.startsWith('/nimbus/') && !url.startsWith('/nimbus/v1/')) {
      const m = /^\/nimbus\/(urls|apis|albs)\/([a-z0-9-]+)(?=\/|\?|$)/.exec(url);
      if (m) return this.#serve(m[1] as Door, req, res, m[2]!, m[0]);
    }
    return false;
  };

  #serve(door: Door, req: IncomingMessage, res: ServerResponse, id: string, prefix: string): true {
    this.#o[door].serve(req, res, id, prefix).catch((err: unknown) => {
      // Each door answers its own failures; this only guards against a bug escaping one.
      this.#o.logger.error('front door failed', { door, error: (err as Error)?.stack ?? String(err) });
      if (!res.headersSent) res.writeHead(500).end();
    });
    return true;
  }
}
