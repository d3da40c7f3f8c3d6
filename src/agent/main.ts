/**
 * The `nimbus-agent` extension's entry point (bundled into /opt/nimbus-agent/agent.mjs).
 *
 * Start-up is on every cold start's path: Lambda starts the runtime only once every
 * extension has registered. So this file registers first, with the least code loaded (the
 * Runtime API proxy before it, when the function asked for it, since the runtime must find
 * it up), and loads the rest of the agent while the runtime starts beside it.
 *
 * If the agent itself fails, it keeps answering the Extensions API without doing anything
 * (as Datadog's extension falls back to an idle loop), so the function is never held up
 * by a broken agent.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readAgentConfig } from './config.ts';
import { createAgentLog } from './agent-log.ts';
import { ExtensionsApiClient } from './lambda/extensions-api-client.ts';
import { idleLoop } from './lambda/idle-loop.ts';
import type { ProxyInterceptor } from './model.ts';

const env = process.env;
const config = readAgentConfig(env);
const log = createAgentLog(config.logLevel);
const runtimeApi = env.AWS_LAMBDA_RUNTIME_API ?? '';
const api = new ExtensionsApiClient(runtimeApi || '127.0.0.1:9001');
const managed = env.AWS_LAMBDA_INITIALIZATION_TYPE === 'lambda-managed-instances';
/** Filled by the agent once loaded; events cannot come before (Init waits for the agent). */
const interceptors: ProxyInterceptor[] = [];

async function startProxy(): Promise<{ close(): Promise<void> } | undefined> {
  if (!config.proxyEnabled || !runtimeApi) return undefined;
  try {
    const { startRuntimeApiProxy } = await import('./proxy/runtime-api-proxy.ts');
    const proxy = await startRuntimeApiProxy({ host: config.bindHost, port: config.proxyPort, upstream: runtimeApi, interceptors, onError: (m) => log.warn(m) });
    // Tells /opt/nimbus-wrapper where the proxy is. Without this file the runtime talks to
    // the Runtime API directly, so a proxy that could not start costs the function nothing.
    await writeFile(path.join(env.TMPDIR ?? '/tmp', '.nimbus-agent-proxy'), `${config.bindHost}:${proxy.port}`);
    return proxy;
  } catch (err) {
    log.warn(`Runtime API proxy not started: ${(err as Error).message}`);
    return undefined;
  }
}

async function main(): Promise<void> {
  const proxy = await startProxy();
  const since = (): string => `${performance.now().toFixed(1)} ms after start`;
  log.debug(`registering, ${since()}`);
  // The layer's launcher registered already, from bash, unless the proxy had to come first.
  const early = env.NIMBUS_AGENT_EXTENSION_ID;
  const registration = early
    ? Promise.resolve(api.adopt(early, env.NIMBUS_AGENT_REGISTRATION ?? '{}'))
    : api.register('nimbus-agent', managed ? ['SHUTDOWN'] : ['INVOKE', 'SHUTDOWN']);
  // Not awaited before the import: the agent's modules load while the platform answers.
  registration.then(() => log.debug(`registered, ${since()}`), () => {});
  const { NimbusAgent } = await import('./agent.ts');
  log.debug(`loaded, ${since()}`);
  const agent = new NimbusAgent(config, log, env, { api, registration, interceptors, proxy });
  await agent.run();
}

main().then(
  () => process.exit(0),
  async (err: Error) => {
    log.error(`agent failed, continuing without it: ${err.stack ?? err.message}`);
    await idleLoop(runtimeApi, log, api);
    process.exit(0);
  },
);
