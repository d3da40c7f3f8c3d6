/**
 * `nimbus queue`: Nimbus's built-in queues, where async destinations and dead-letter
 * queues deliver. List them, read their messages, replay failed events.
 */
import type { Command } from 'commander';
import { endpointOf, fetchNimbus, printJson, withClientOptions, type ClientOptions, collect } from '../client.ts';
import type { QueueMessage } from '../../invoker/async/builtin-queues.ts';

export function registerQueue(program: Command): void {
  const queue = program.command('queue').description('Built-in queues that hold async destination records and dead letters.');
  withClientOptions(queue.command('list [queue]').description('List the queues, or the messages of one queue.')).action(async (name: string | undefined, options: ClientOptions) => {
    if (!name) {
      const { Queues } = (await fetchNimbus(options, '/nimbus/v1/queues')) as { Queues: string[] };
      if (options.json) printJson(Queues);
      else process.stdout.write(Queues.length ? Queues.join('\n') + '\n' : 'No queue holds messages.\n');
      return;
    }
    const { Messages } = (await fetchNimbus(options, `/nimbus/v1/queues/${encodeURIComponent(name)}/messages`)) as { Messages: QueueMessage[] };
    if (options.json) {
      printJson(Messages);
      return;
    }
    for (const m of Messages) {
      let summary = m.body;
      try {
        const record = JSON.parse(m.body) as { requestContext?: { requestId?: string; condition?: string; approximateInvokeCount?: number } };
        if (record.requestContext) {
          const rc = record.requestContext;
          summary = `${rc.condition} request ${rc.requestId} after ${rc.approximateInvokeCount} attempt(s)`;
        }
      } catch {
        // a dead letter: the original event
      }
      process.stdout.write(`${new Date(m.sentAtMs).toISOString()}  ${m.messageId}  ${summary.slice(0, 160)}\n`);
    }
  });
  withClientOptions(
    queue
      .command('replay <queue>')
      .description('Invoke again (asynchronously) the events behind a queue\'s messages.')
      .option('--id <messageId>', 'only this message (repeatable)', collect, [])
      .option('--function <name>', 'function to send dead letters to (records name their own)')
      .option('--delete', 'remove each message once replayed'),
  ).action(async (name: string, options: ClientOptions & { id: string[]; function?: string; delete?: boolean }) => {
    const res = await fetch(`${endpointOf(options)}/nimbus/v1/queues/${encodeURIComponent(name)}/replay`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ MessageIds: options.id.length ? options.id : undefined, FunctionName: options.function, Delete: options.delete === true }),
    });
    const body = (await res.json()) as { Replayed?: Array<{ MessageId: string; RequestId: string }>; message?: string };
    if (!res.ok) throw new Error(body.message ?? `HTTP ${res.status}`);
    if (options.json) printJson(body.Replayed);
    else for (const r of body.Replayed ?? []) process.stdout.write(`replayed ${r.MessageId} as request ${r.RequestId}\n`);
  });
}
