/**
 * Threat detection as the agent starts it: the WAF engine with its rules, the deny lists
 * polled from the Nimbus server, and the interceptor the Runtime API proxy calls. An engine
 * that cannot load is said once in the log; the interceptor still applies the deny lists.
 */
import type { AgentConfig } from '../config.ts';
import type { AgentLog } from '../agent-log.ts';
import type { RootSpanTagger, TelemetrySink } from '../model.ts';
import { WafEngine } from './waf-engine.ts';
import { DenyListClient, deniedNothing } from './deny-list-client.ts';
import { AppsecInterceptor } from './appsec-interceptor.ts';

export interface AppsecDeps {
  sink: TelemetrySink;
  tagger: RootSpanTagger;
  log: AgentLog;
}

export interface Appsec {
  readonly interceptor: AppsecInterceptor;
  readonly engine: WafEngine;
  close(): Promise<void>;
}

export async function createAppsec(config: AgentConfig, deps: AppsecDeps): Promise<Appsec> {
  const { log } = deps;
  const engine = await WafEngine.start({ configured: config.appsecRules, log: (level, message) => log[level](message) });
  const client = config.nimbusEndpoint
    ? new DenyListClient({ endpoint: config.nimbusEndpoint, pollMs: config.appsecDenyListPollMs, onError: (err) => log.warn(err.message) })
    : undefined;
  if (!client && config.appsecMode === 'block') log.warn('threat detection: no Nimbus endpoint (NIMBUS_TELEMETRY_ENDPOINT), so no IP or user deny lists');
  client?.start();
  const interceptor = new AppsecInterceptor({
    engine,
    sink: deps.sink,
    tagger: deps.tagger,
    mode: config.appsecMode,
    wafTimeoutMicros: config.wafTimeoutMicros,
    userClaim: config.appsecUserClaim,
    denyList: client ?? deniedNothing,
    onError: (err) => log.warn(`threat detection: ${err.message}`),
  });
  log.info(`threat detection: ${config.appsecMode} mode${engine.available ? '' : ' (deny lists only: the WAF is off)'}`);
  return {
    interceptor,
    engine,
    async close() {
      interceptor.close();
      client?.stop();
      engine.dispose();
    },
  };
}
