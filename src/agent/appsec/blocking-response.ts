/**
 * The answer the agent gives on the handler's behalf when it blocks a request: a result in
 * the trigger's own response shape, which the front door then turns into the HTTP response.
 * The body is JSON or an HTML page, picked from the Accept header as Datadog's tracers pick
 * it: HTML only when the client accepts `text/html` and not `application/json`. A WAF
 * `block_request` action may ask for another status or a fixed body type; a
 * `redirect_request` action answers with its Location instead.
 */
import type { HttpTrigger } from './http-request.ts';

export const blockedJsonBody = JSON.stringify({
  errors: [
    {
      title: "You've been blocked",
      detail: 'Sorry, you cannot access this page. Please contact the customer service team. Security provided by Nimbus.',
    },
  ],
});

export const blockedHtmlBody =
  '<!DOCTYPE html><html lang="en"><head><meta charset="UTF-8"><meta name="viewport" content="width=device-width,initial-scale=1">' +
  "<title>You've been blocked</title>" +
  '<style>body{font-family:sans-serif;display:flex;flex-direction:column;align-items:center;justify-content:center;min-height:100vh;margin:0;color:#444;background:#f6f7f9}h1{font-size:24px}p{font-size:18px}footer{font-size:14px;color:#888}</style>' +
  "</head><body><main><h1>You've been blocked</h1><p>Sorry, you cannot access this page. Please contact the customer service team.</p></main>" +
  '<footer><p>Security provided by Nimbus.</p></footer></body></html>';

const jsonType = 'application/json';
const htmlType = 'text/html; charset=utf-8';

/** The parameters of a WAF `block_request` or `redirect_request` action. */
export interface BlockingAction {
  status_code?: number | string;
  /** `auto` (by Accept), `json` or `html`. */
  type?: string;
  /** redirect_request only. */
  location?: string;
}

export interface BlockingRequest {
  trigger: HttpTrigger;
  accept: string | undefined;
  /** ALB with multi-value headers: the response must carry `multiValueHeaders`. */
  multiValueHeaders: boolean;
}

/** The media types of an Accept header, without their parameters (`text/html;q=0.9` → `text/html`). */
function acceptedTypes(accept: string): string[] {
  return accept.split(',').map((part) => part.split(';', 1)[0]!.trim().toLowerCase());
}

export function prefersHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  const types = acceptedTypes(accept);
  return types.includes('text/html') && !types.includes('application/json');
}

const reasonPhrases: Record<number, string> = {
  301: 'Moved Permanently',
  302: 'Found',
  303: 'See Other',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  429: 'Too Many Requests',
};

function statusOf(raw: number | string | undefined, fallback: number, min: number, max: number): number {
  const n = typeof raw === 'string' ? Number(raw) : raw;
  return typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max ? n : fallback;
}

/** The blocking result as the payload to post as the invocation's response. */
export function blockingResponse(request: BlockingRequest, action: BlockingAction = {}): Buffer {
  let statusCode: number;
  const headers: Record<string, string> = {};
  let body = '';
  if (typeof action.location === 'string' && action.location !== '') {
    statusCode = statusOf(action.status_code, 303, 300, 399);
    headers.location = action.location;
  } else {
    statusCode = statusOf(action.status_code, 403, 400, 599);
    const html = action.type === 'html' || ((action.type === undefined || action.type === 'auto') && prefersHtml(request.accept));
    headers['content-type'] = html ? htmlType : jsonType;
    body = html ? blockedHtmlBody : blockedJsonBody;
  }
  const result: Record<string, unknown> = { statusCode, headers, body, isBase64Encoded: false };
  if (request.trigger === 'alb') {
    result.statusDescription = `${statusCode} ${reasonPhrases[statusCode] ?? 'Blocked'}`;
    if (request.multiValueHeaders) {
      const multi: Record<string, string[]> = {};
      for (const name in headers) multi[name] = [headers[name]!];
      result.multiValueHeaders = multi;
    }
  }
  return Buffer.from(JSON.stringify(result));
}
