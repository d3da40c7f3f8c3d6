/**
 * The `nimbus-agent` extension's entry point (bundled into /opt/nimbus-agent/agent.mjs).
 * If the agent itself fails, it keeps answering the Extensions API without doing anything
 * (as Datadog's extension falls back to an idle loop), so the function is never held up
 * by a broken agent.
 */
import { readAgentConfig } from './config.ts';
import { createAgentLog } from './agent-log.ts';
import { NimbusAgent } from './agent.ts';
import { idleLoop } from './lambda/idle-loop.ts';

const config = readAgentConfig(process.env);
const log = createAgentLog(config.logLevel);
const agent = new NimbusAgent(config, log, process.env);

agent.run().then(
  () => process.exit(0),
  async (err: Error) => {
    log.error(`agent failed, continuing without it: ${err.stack ?? err.message}`);
    await idleLoop(process.env.AWS_LAMBDA_RUNTIME_API ?? '', log, agent.extensionsApi);
    process.exit(0);
  },
);
