/**
 * What the agent does when it cannot work: stay registered and keep calling /next, so the
 * platform never waits on it, until SHUTDOWN. Registers first if it had not yet.
 */
import { ExtensionsApiClient, ExtensionsApiError } from './extensions-api-client.ts';
import type { AgentLog } from '../agent-log.ts';

export async function idleLoop(runtimeApi: string, log: AgentLog): Promise<void> {
  if (!runtimeApi) return;
  const api = new ExtensionsApiClient(runtimeApi);
  try {
    await api.register('nimbus-agent', ['SHUTDOWN']).catch((err: unknown) => {
      // Already registered (the failure came later): keep that registration's identifier.
      if (!(err instanceof ExtensionsApiError)) throw err;
    });
    for (;;) {
      const event = await api.next();
      if (event.eventType === 'SHUTDOWN') return;
    }
  } catch (err) {
    log.error(`idle loop ended: ${(err as Error).message}`);
  } finally {
    api.close();
  }
}
