/**
 * HTTP of the Extensions API 2020-01-01 (shared/reference/lambda-interfaces.md §2):
 * register, event/next, init/error and exit/error, on the environment's Runtime API port.
 * Only translates HTTP into calls on the core (extension-registry.ts); the identifier
 * header is checked first, with RIE's 403 types.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorReply, header, readBody, respond, send, type RouteInstaller, type RuntimeApiReply } from './runtime-api-server.ts';

export interface ExtensionsApiCore {
  register(name: string | undefined, body: Buffer, acceptFeature: string | undefined): RuntimeApiReply;
  next(id: string, res: ServerResponse): RuntimeApiReply | undefined;
  initError(id: string, errorType: string | undefined): RuntimeApiReply;
  exitError(id: string, errorType: string | undefined): RuntimeApiReply;
}

/** Register and error bodies are small JSON documents. */
export const maxExtensionRequestBytes = 64 * 1024;

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The `Lambda-Extension-Identifier` header, as RIE's middleware checks it: present and a
 * UUID. Returns the id (lowercase), or the 403 to send.
 */
export function extensionIdentifier(req: IncomingMessage): string | RuntimeApiReply {
  const id = header(req, 'lambda-extension-identifier');
  if (!id) return errorReply(403, 'Extension.MissingExtensionIdentifier', 'Missing Lambda-Extension-Identifier header');
  if (!uuidPattern.test(id)) return errorReply(403, 'Extension.InvalidExtensionIdentifier', 'Invalid Lambda-Extension-Identifier');
  return id.toLowerCase();
}

/** A request body, or the 403 for one past `maxExtensionRequestBytes`. */
async function smallBody(req: IncomingMessage): Promise<Buffer | RuntimeApiReply> {
  const body = await readBody(req, maxExtensionRequestBytes);
  return body ?? errorReply(403, 'InvalidRequestFormat', `The request body is larger than ${maxExtensionRequestBytes} bytes`);
}

export function extensionsRoutes(core: ExtensionsApiCore): RouteInstaller {
  return (route) => {
    route('POST', '/2020-01-01/extension/register', (req, res) => {
      void respond(req, res, async () => {
        const body = await smallBody(req);
        if (!Buffer.isBuffer(body)) return body;
        return core.register(header(req, 'lambda-extension-name'), body, header(req, 'lambda-extension-accept-feature'));
      });
    });
    route('GET', '/2020-01-01/extension/event/next', (req, res) => {
      const id = extensionIdentifier(req);
      if (typeof id !== 'string') return send(res, id);
      const reply = core.next(id, res);
      if (reply) send(res, reply);
    });
    for (const kind of ['init', 'exit'] as const) {
      route('POST', `/2020-01-01/extension/${kind}/error`, (req, res) => {
        void respond(req, res, async () => {
          const id = extensionIdentifier(req);
          const body = await smallBody(req);
          if (typeof id !== 'string') return id;
          if (!Buffer.isBuffer(body)) return body;
          const errorType = header(req, 'lambda-extension-function-error-type');
          return kind === 'init' ? core.initError(id, errorType) : core.exitError(id, errorType);
        });
      });
    }
  };
}
