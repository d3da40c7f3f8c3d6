/**
 * What the agent does when it cannot work: stay registered and keep calling /next, so the
 * platform never waits on it, until SHUTDOWN. Registers first if it had not yet.
 */
import { ExtensionsApiClient } from './extensions-api-client.ts';
import type { AgentLog } from '../agent-log.ts';

export async function idleLoop(runtimeApi: string, log: AgentLog, registeredApi?: ExtensionsApiClient): Promise<void> {
  if (!runtimeApi && !registeredApi?.registered) return;
  // Registered already (the failure came later): only that client's identifier is accepted by
  // /next; a second registration would be refused and leave this loop without one.
  const api = registeredApi?.registered ? registeredApi : new ExtensionsApiClient(runtimeApi);
  try {
    if (!api.registered) await api.register('nimbus-agent', ['SHUTDOWN']);
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
