/**
 * The agent's configuration: the `DD_*` variables the Datadog Lambda extension reads (the
 * subset that applies here) and their `NIMBUS_*` equivalents; a `NIMBUS_*` value wins over
 * its `DD_*` twin. This is the only file of the agent that reads `process.env`.
 * docs/agent.md has the table.
 */

export interface AgentConfig {
  /** `DD_LOG_LEVEL` / `NIMBUS_AGENT_LOG_LEVEL`: the agent's own log lines (`info`). */
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'off';
  /** Where the listeners bind: the environment's own loopback address (`NIMBUS_SANDBOX_ADDRESS`), else 127.0.0.1. */
  bindHost: string;
  dogstatsdPort: number;
  traceAgentPort: number;
  otlpHttpPort: number;
  telemetryPort: number;
  proxyPort: number;
  /** `AWS_LAMBDA_EXEC_WRAPPER=/opt/nimbus-wrapper`: the runtime talks to the agent's Runtime API proxy. */
  proxyEnabled: boolean;
  /** `DD_LOGS_ENABLED` / `DD_SERVERLESS_LOGS_ENABLED` (OR of the two when either is set; true). */
  logsEnabled: boolean;
  /** `DD_LOGS_CONFIG_PROCESSING_RULES`, raw JSON, parsed (and reported when invalid) by logs/. */
  processingRules: string | undefined;
  /** `DD_SERVERLESS_FLUSH_STRATEGY`, raw, parsed (with a warning when unknown) by flush/. */
  flushStrategy: string | undefined;
  /** `DD_FLUSH_TIMEOUT` in seconds (30), as milliseconds. */
  flushTimeoutMs: number;
  /** `DD_ENHANCED_METRICS` (true). */
  enhancedMetrics: boolean;
  /** `DD_LAMBDA_PROC_ENHANCED_METRICS` (true). */
  procEnhancedMetrics: boolean;
  /** `DD_CAPTURE_LAMBDA_PAYLOAD` (false): request and response on the `aws.lambda` span. */
  captureLambdaPayload: boolean;
  /** `DD_SERVICE` (lower-cased), `DD_ENV`, `DD_VERSION`, `DD_TAGS`, as `key:value`. */
  service: string | undefined;
  tags: string[];
  /** `DD_LAMBDA_CUSTOMER_METRICS_EXCLUDE_TAGS`: tag keys stripped from custom metrics. */
  customMetricsExcludeTags: string[];
  /** `NIMBUS_TELEMETRY_ENDPOINT`: the Nimbus server's intake (set by Nimbus for functions with the agent layer). */
  nimbusEndpoint: string | undefined;
  /**
   * `NIMBUS_OTLP_ENDPOINT`: a collector to export to. Not `OTEL_EXPORTER_OTLP_ENDPOINT`: Nimbus points
   * the function's OpenTelemetry SDK at the agent's own receiver with it, and the agent inherits it.
   */
  otlpEndpoint: string | undefined;
  /** `DD_API_KEY` and `DD_SITE` (`datadoghq.com`); `DD_URL` / `DD_DD_URL` override the metrics URL (tests). */
  datadog: { apiKey: string; site: string; metricsUrl: string; logsUrl: string; tracesUrl: string } | undefined;
  /** `NIMBUS_AGENT_MAX_BUFFERED` (10,000): items of each kind kept while backends are down; older ones are dropped and counted. */
  maxBuffered: number;
  /** `DD_SERVERLESS_APPSEC_ENABLED` / `NIMBUS_APPSEC_ENABLED` (false). */
  appsecEnabled: boolean;
  /** `DD_APPSEC_RULES` / `NIMBUS_APPSEC_RULES`: a rules file instead of the bundled recommended ruleset. */
  appsecRules: string | undefined;
  /** `DD_APPSEC_WAF_TIMEOUT` in microseconds (5,000). */
  wafTimeoutMicros: number;
  /** `NIMBUS_APPSEC_MODE`: `monitor` (default) or `block`. */
  appsecMode: 'monitor' | 'block';
  /** `NIMBUS_APPSEC_USER_CLAIM` (`sub`): the authorizer claim that names the user, for user deny lists. */
  appsecUserClaim: string;
  /** `NIMBUS_APPSEC_DENYLIST_POLL_MS` (1,000): how soon a deny-list change reaches a running environment. */
  appsecDenyListPollMs: number;
  /** Problems found while reading the variables; logged once at start, never fatal. */
  warnings: string[];
}

type Env = Record<string, string | undefined>;

const trueish = /^(1|t|true|yes|on)$/i;
const falseish = /^(0|f|false|no|off)$/i;

function readBool(env: Env, names: string[], fallback: boolean, warnings: string[]): boolean {
  for (const name of names) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    if (trueish.test(raw)) return true;
    if (falseish.test(raw)) return false;
    warnings.push(`${name}=${raw} is not a boolean; using ${fallback}`);
    return fallback;
  }
  return fallback;
}

function readNumber(env: Env, names: string[], fallback: number, warnings: string[], min = 0): number {
  for (const name of names) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    const n = Number(raw);
    if (Number.isFinite(n) && n >= min) return n;
    warnings.push(`${name}=${raw} is not a number >= ${min}; using ${fallback}`);
    return fallback;
  }
  return fallback;
}

function readString(env: Env, names: string[]): string | undefined {
  for (const name of names) {
    const raw = env[name];
    if (raw !== undefined && raw !== '') return raw;
  }
  return undefined;
}

/** `DD_TAGS` accepts `a:b,c:d` and `a:b c:d`. */
function splitTags(raw: string | undefined): string[] {
  if (!raw) return [];
  return raw.split(/[\s,]+/).map((t) => t.trim()).filter(Boolean);
}

function datadogUrls(env: Env): AgentConfig['datadog'] {
  const apiKey = readString(env, ['DD_API_KEY']);
  if (!apiKey) return undefined;
  const site = readString(env, ['DD_SITE']) ?? 'datadoghq.com';
  // DD_URL lets a test point every intake at one recording server; DD_SITE is the normal way.
  const base = readString(env, ['DD_URL', 'DD_DD_URL'])?.replace(/\/$/, '');
  return {
    apiKey,
    site,
    metricsUrl: base ?? `https://api.${site}`,
    logsUrl: readString(env, ['DD_LOGS_CONFIG_LOGS_DD_URL'])?.replace(/\/$/, '') ?? base ?? `https://http-intake.logs.${site}`,
    tracesUrl: readString(env, ['DD_APM_DD_URL'])?.replace(/\/$/, '') ?? base ?? `https://trace.agent.${site}`,
  };
}

export function readAgentConfig(env: Env = process.env): AgentConfig {
  const warnings: string[] = [];
  const levels = ['debug', 'info', 'warn', 'error', 'off'] as const;
  const rawLevel = (readString(env, ['NIMBUS_AGENT_LOG_LEVEL', 'DD_LOG_LEVEL']) ?? 'info').toLowerCase();
  const logLevel = (levels as readonly string[]).includes(rawLevel) ? (rawLevel as AgentConfig['logLevel']) : 'info';
  if (logLevel !== rawLevel) warnings.push(`log level ${rawLevel} is unknown; using info`);

  const logsEnabledSet = env.DD_LOGS_ENABLED !== undefined || env.DD_SERVERLESS_LOGS_ENABLED !== undefined;
  const logsEnabled = logsEnabledSet
    ? readBool(env, ['DD_LOGS_ENABLED'], false, warnings) || readBool(env, ['DD_SERVERLESS_LOGS_ENABLED'], false, warnings)
    : true;

  const tags = splitTags(readString(env, ['DD_TAGS']));
  const service = readString(env, ['DD_SERVICE'])?.toLowerCase();
  if (service) tags.push(`service:${service}`);
  const ddEnv = readString(env, ['DD_ENV']);
  if (ddEnv) tags.push(`env:${ddEnv}`);
  const ddVersion = readString(env, ['DD_VERSION']);
  if (ddVersion) tags.push(`version:${ddVersion}`);

  const rawMode = (readString(env, ['NIMBUS_APPSEC_MODE']) ?? 'monitor').toLowerCase();
  if (rawMode !== 'monitor' && rawMode !== 'block') warnings.push(`NIMBUS_APPSEC_MODE=${rawMode} is unknown; using monitor`);

  return {
    logLevel,
    bindHost: readString(env, ['NIMBUS_SANDBOX_ADDRESS']) ?? '127.0.0.1',
    dogstatsdPort: readNumber(env, ['NIMBUS_DOGSTATSD_PORT', 'DD_DOGSTATSD_PORT'], 8125, warnings, 1),
    traceAgentPort: readNumber(env, ['NIMBUS_TRACE_AGENT_PORT', 'DD_APM_RECEIVER_PORT', 'DD_TRACE_AGENT_PORT'], 8126, warnings, 1),
    otlpHttpPort: readNumber(env, ['NIMBUS_OTLP_HTTP_PORT'], 4318, warnings, 1),
    telemetryPort: readNumber(env, ['NIMBUS_AGENT_TELEMETRY_PORT'], 8999, warnings, 1),
    proxyPort: readNumber(env, ['NIMBUS_AGENT_PROXY_PORT'], 9000, warnings, 1),
    proxyEnabled: env.AWS_LAMBDA_EXEC_WRAPPER === '/opt/nimbus-wrapper',
    logsEnabled,
    processingRules: readString(env, ['NIMBUS_LOGS_PROCESSING_RULES', 'DD_LOGS_CONFIG_PROCESSING_RULES']),
    flushStrategy: readString(env, ['NIMBUS_FLUSH_STRATEGY', 'DD_SERVERLESS_FLUSH_STRATEGY']),
    flushTimeoutMs: readNumber(env, ['NIMBUS_FLUSH_TIMEOUT', 'DD_FLUSH_TIMEOUT'], 30, warnings, 0.001) * 1000,
    enhancedMetrics: readBool(env, ['NIMBUS_ENHANCED_METRICS', 'DD_ENHANCED_METRICS'], true, warnings),
    procEnhancedMetrics: readBool(env, ['NIMBUS_PROC_ENHANCED_METRICS', 'DD_LAMBDA_PROC_ENHANCED_METRICS'], true, warnings),
    captureLambdaPayload: readBool(env, ['NIMBUS_CAPTURE_LAMBDA_PAYLOAD', 'DD_CAPTURE_LAMBDA_PAYLOAD'], false, warnings),
    service,
    tags,
    customMetricsExcludeTags: splitTags(readString(env, ['DD_LAMBDA_CUSTOMER_METRICS_EXCLUDE_TAGS'])),
    nimbusEndpoint: readString(env, ['NIMBUS_TELEMETRY_ENDPOINT']),
    otlpEndpoint: readString(env, ['NIMBUS_OTLP_ENDPOINT']),
    datadog: datadogUrls(env),
    maxBuffered: readNumber(env, ['NIMBUS_AGENT_MAX_BUFFERED'], 10_000, warnings, 1),
    appsecEnabled: readBool(env, ['NIMBUS_APPSEC_ENABLED', 'DD_SERVERLESS_APPSEC_ENABLED'], false, warnings),
    appsecRules: readString(env, ['NIMBUS_APPSEC_RULES', 'DD_APPSEC_RULES']),
    wafTimeoutMicros: readNumber(env, ['NIMBUS_APPSEC_WAF_TIMEOUT', 'DD_APPSEC_WAF_TIMEOUT'], 5000, warnings, 1),
    appsecMode: rawMode === 'block' ? 'block' : 'monitor',
    appsecUserClaim: readString(env, ['NIMBUS_APPSEC_USER_CLAIM']) ?? 'sub',
    appsecDenyListPollMs: readNumber(env, ['NIMBUS_APPSEC_DENYLIST_POLL_MS'], 1000, warnings, 10),
    warnings,
  };
}
