/**
 * Variables Nimbus sets for a function that carries the Nimbus agent layer, so that the
 * clients people already use find the agent without configuration: on Lambda they would
 * reach it on localhost; here "localhost" of an environment is its own loopback address
 * (sandbox-addresses.ts). The function's own variables override every one of these.
 */

/** The file name the `nimbus-agent` layer puts in /opt/extensions. */
export const agentExtensionName = 'nimbus-agent';

export function agentDefaults(sandboxAddress: string, telemetryEndpoint: string | undefined): Record<string, string> {
  const env: Record<string, string> = {
    // hot-shots, datadog-lambda-js and dd-trace read DD_AGENT_HOST for DogStatsD and traces.
    DD_AGENT_HOST: sandboxAddress,
    DD_TRACE_AGENT_URL: `http://${sandboxAddress}:8126`,
    // dd-trace on Lambda writes traces to stdout unless it finds Datadog's own extension
    // at /opt/extensions/datadog-agent: send them to this agent's trace intake instead.
    DD_TRACE_EXPERIMENTAL_EXPORTER: 'agent',
    // OpenTelemetry SDKs: the agent's OTLP/HTTP receiver speaks JSON.
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://${sandboxAddress}:4318`,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
  };
  if (telemetryEndpoint) env.NIMBUS_TELEMETRY_ENDPOINT = telemetryEndpoint;
  return env;
}
