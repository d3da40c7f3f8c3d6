/**
 * The ALB front door: `http://<name>.elb.<region>.localhost:<port>/...` (or
 * `/nimbus/albs/<name>/...`). Builds the target event (§5.4), with or without multi-value
 * headers, and maps the answer back, statusDescription included. Failures answer as an
 * ALB does, with its HTML error pages: 502 for a failed function or a malformed answer,
 * 503 when no target is registered, 413 for request bodies over 1 MB.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../logging/logger.ts';
import type { FrontDoorInvoker, HttpResult } from '../types.ts';
import { readIncoming, RequestRejection } from '../http/incoming.ts';
import { MalformedResponse, writeResult } from '../http/outgoing.ts';
import { forwardedHeaders } from '../events/common.ts';
import { albEvent } from '../events/alb-event.ts';
import { albResponse } from '../responses/alb-response.ts';
import { invokeWithEvent } from '../invoke-event.ts';
import type { AlbService, AlbTargetRecord } from './alb-service.ts';

/** ALB takes request bodies of at most 1 MB for Lambda targets. */
export const albMaxRequestBodyBytes = 1024 * 1024;

export interface AlbDoorOptions {
  targets: AlbService;
  invoker: FrontDoorInvoker;
  logger: Logger;
}

const reasons: Record<number, string> = { 400: 'Bad Request', 413: 'Request Entity Too Large', 502: 'Bad Gateway', 503: 'Service Temporarily Unavailable' };

/** The HTML error page an ALB sends. */
function errorPage(status: number): HttpResult {
  const title = `${status} ${reasons[status]}`;
  const html = `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n</body>\r\n</html>\r\n`;
  return { status, headers: [['Server', 'awselb/2.0'], ['Content-Type', 'text/html']], body: Buffer.from(html) };
}

export class AlbDoor {
  readonly #o: AlbDoorOptions;

  constructor(options: AlbDoorOptions) {
    this.#o = options;
  }

  async serve(req: IncomingMessage, res: ServerResponse, name: string, pathPrefix: string): Promise<void> {
    let result: HttpResult;
    try {
      const target = await this.#o.targets.find(name);
      result = target ? await this.#answer(req, target, pathPrefix) : errorPage(503);
    } catch (err) {
      if (err instanceof RequestRejection) result = errorPage(err.kind === 'too-large' ? 413 : 400);
      else {
        this.#o.logger.error('ALB request failed', { target: name, error: (err as Error)?.stack ?? String(err) });
        result = errorPage(502);
      }
    }
    writeResult(res, result, req.method ?? 'GET');
    if (!req.complete) req.resume();
  }

  async #answer(req: IncomingMessage, target: AlbTargetRecord, pathPrefix: string): Promise<HttpResult> {
    const request = await readIncoming(req, albMaxRequestBodyBytes, pathPrefix);
    const event = albEvent({
      request,
      headers: forwardedHeaders(request, req.socket.localPort ?? 0),
      path: request.rawPath,
      targetGroupArn: target.targetGroupArn,
      multiValueHeaders: target.multiValueHeaders,
    });
    const answer = await invokeWithEvent(this.#o.invoker, target, event, randomUUID(), this.#o.logger);
    if (answer.kind !== 'response') return errorPage(answer.kind === 'event-too-large' ? 413 : 502);
    try {
      return albResponse(answer.payload, target.multiValueHeaders);
    } catch (err) {
      if (!(err instanceof MalformedResponse)) throw err;
      this.#o.logger.info('ALB: malformed Lambda response', { target: target.name, functionName: target.functionName, reason: err.message });
      return errorPage(502);
    }
  }
}
