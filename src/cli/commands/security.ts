/**
 * `nimbus security`: threat detection from the command line. `events` lists the attacks the
 * Nimbus agents reported; `block-ip`, `unblock-ip`, `block-user`, `unblock-user` and
 * `deny-list` manage the deny lists that agents in block mode apply within about a second,
 * without a redeploy.
 */
import type { Command } from 'commander';
import type { SecuritySignal } from '../../agent/model.ts';
import type { DenyListEntry, DenyListView } from '../../appsec/deny-list-service.ts';
import { endpointOf, fetchNimbus, printJson, withClientOptions, type ClientOptions } from '../client.ts';
import { parseCount, parseSince } from './logs.ts';
import { printTable } from './metrics.ts';

type SecurityEvent = SecuritySignal & { functionName: string };

interface EventsOptions extends ClientOptions {
  function?: string;
  since?: string;
  limit?: string;
}

interface BlockOptions extends ClientOptions {
  reason?: string;
}

/** A POST or DELETE to a Nimbus route; the server's AWS-shaped error as a readable Error. */
async function send(options: ClientOptions, method: 'POST' | 'DELETE', path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(endpointOf(options) + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const err = new Error((parsed as { message?: string } | undefined)?.message ?? `HTTP ${res.status}`);
    err.name = res.headers.get('x-amzn-errortype') ?? 'Error';
    throw err;
  }
  return parsed;
}

/** Matched values are attacker input: keep terminal control characters out of the table. */
const printable = (s: string, max: number): string => {
  const clean = s.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
};

function printEvents(events: SecurityEvent[], options: EventsOptions): void {
  if (events.length === 0) {
    process.stdout.write(`No security events${options.function ? ` for ${options.function}` : ''} in this window.\n`);
    return;
  }
  printTable(
    ['TIME', 'FUNCTION', 'CATEGORY', 'RULE', 'BLOCKED', 'CLIENT IP', 'REQUEST', 'PARAMETER', 'VALUE'],
    events.map((e) => [
      new Date(e.timestamp).toISOString(),
      e.functionName,
      e.category,
      e.ruleId,
      e.blocked ? 'blocked' : '-',
      e.clientIp ?? '-',
      printable(`${e.method ?? ''} ${e.route ?? ''}`.trim() || e.trigger, 40),
      printable(e.parameter, 60),
      printable(e.value, 60),
    ]),
  );
}

function printDenyList(view: DenyListView): void {
  const rows = (kind: string, entries: DenyListEntry[]): string[][] => entries.map((e) => [kind, e.value, e.addedAt, printable(e.reason ?? '-', 80)]);
  const all = [...rows('ip', view.ips), ...rows('user', view.users)];
  if (all.length === 0) {
    process.stdout.write('The deny lists are empty.\n');
    return;
  }
  printTable(['KIND', 'VALUE', 'ADDED', 'REASON'], all);
}

export function registerSecurity(program: Command): void {
  const security = program.command('security').description('Threat detection: attacks seen by the Nimbus agent, and the IP and user deny lists.');

  withClientOptions(
    security
      .command('events')
      .description('List the attack attempts the Nimbus agents reported, newest first.')
      .option('--function <name>', 'only this function')
      .option('--since <when>', 'only events since 15m, 2h, 1d, or a date')
      .option('--limit <n>', 'at most this many events', '100'),
  ).action(async (options: EventsOptions) => {
    const query = new URLSearchParams({ limit: String(parseCount('--limit', options.limit) ?? 100) });
    if (options.function) query.set('function', options.function);
    const since = parseSince(options.since);
    if (since !== undefined) query.set('since', String(since));
    const { events } = (await fetchNimbus(options, `/nimbus/v1/security/events?${query}`)) as { events: SecurityEvent[] };
    if (options.json) printJson(events);
    else printEvents(events, options);
  });

  withClientOptions(security.command('deny-list').description('Show the IP and user deny lists.')).action(async (options: ClientOptions) => {
    const view = (await fetchNimbus(options, '/nimbus/v1/security/deny-list')) as DenyListView;
    if (options.json) printJson({ ips: view.ips, users: view.users });
    else printDenyList(view);
  });

  const lists = [
    { kind: 'ip', segment: 'ips', member: 'ip', noun: 'IP address or CIDR range', arg: '<ip>' },
    { kind: 'user', segment: 'users', member: 'userId', noun: 'user id (the authorizer claim named by NIMBUS_APPSEC_USER_CLAIM)', arg: '<userId>' },
  ] as const;
  for (const list of lists) {
    withClientOptions(
      security
        .command(`block-${list.kind} ${list.arg}`)
        .description(`Deny requests from this ${list.noun} in functions running threat detection in block mode.`)
        .option('--reason <text>', 'why, for whoever reads the list later'),
    ).action(async (value: string, options: BlockOptions) => {
      const entry = (await send(options, 'POST', `/nimbus/v1/security/deny-list/${list.segment}`, { [list.member]: value, reason: options.reason })) as DenyListEntry;
      if (options.json) printJson(entry);
      else process.stdout.write(`denied ${list.kind} ${entry.value}\n`);
    });
    withClientOptions(security.command(`unblock-${list.kind} ${list.arg}`).description(`Remove this ${list.noun} from the deny list.`)).action(
      async (value: string, options: ClientOptions) => {
        await send(options, 'DELETE', `/nimbus/v1/security/deny-list/${list.segment}/${encodeURIComponent(value)}`);
        if (options.json) printJson({ removed: value });
        else process.stdout.write(`allowed ${list.kind} ${value} again\n`);
      },
    );
  }
}
