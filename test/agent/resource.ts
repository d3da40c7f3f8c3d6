/** The function the agent's unit tests pretend to run beside. A fresh object each call: parts of the agent update it in place. */
import type { AgentResource } from '../../src/agent/model.ts';

export function ordersResource(): AgentResource {
  return {
    functionName: 'Orders-API',
    functionArn: 'arn:aws:lambda:us-east-1:123456789012:function:Orders-API',
    version: '$LATEST',
    region: 'us-east-1',
    accountId: '123456789012',
    runtime: 'nodejs22.x',
    memorySize: 128,
    architecture: 'x86_64',
    extensionVersion: '1.0.0',
    tags: [],
  };
}
