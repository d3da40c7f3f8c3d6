/** `nimbus invoke <fn>`: a synchronous invoke through the AWS SDK, printing the payload. */
import type { Command } from 'commander';
import { lambdaClient, printJson, withClientOptions, type ClientOptions } from '../client.ts';

interface InvokeOptions extends ClientOptions {
  payload?: string;
  qualifier?: string;
  logs?: boolean;
}

export function registerInvoke(program: Command): void {
  withClientOptions(
    program
      .command('invoke <function>')
      .description('Invoke a function and print its response.')
      .option('--payload <json>', 'event JSON', '{}')
      .option('--qualifier <q>', 'version or alias')
      .option('--logs', 'also print the tail of the invocation log'),
  ).action(async (functionName: string, options: InvokeOptions) => {
    const { client, sdk } = await lambdaClient(options);
    const out = await client.send(
      new sdk.InvokeCommand({
        FunctionName: functionName,
        Qualifier: options.qualifier,
        Payload: Buffer.from(options.payload ?? '{}'),
        LogType: options.logs || options.json ? 'Tail' : 'None',
      }),
    );
    const payloadText = out.Payload ? Buffer.from(out.Payload).toString('utf8') : '';
    const log = out.LogResult ? Buffer.from(out.LogResult, 'base64').toString('utf8') : undefined;
    if (options.json) {
      let payload: unknown = payloadText;
      try {
        payload = JSON.parse(payloadText);
      } catch {
        // not JSON: keep the text
      }
      printJson({ StatusCode: out.StatusCode, ExecutedVersion: out.ExecutedVersion, FunctionError: out.FunctionError, Payload: payload, Log: log });
    } else {
      if (log && options.logs) process.stderr.write(log);
      process.stdout.write(payloadText + '\n');
    }
    if (out.FunctionError) process.exitCode = 1;
  });
}
