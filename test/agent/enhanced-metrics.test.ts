import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { ordersResource } from './resource.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, writeFile, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import os from 'node:os';
import path from 'node:path';
import { EnhancedMetrics } from '../../src/agent/enhanced/enhanced-metrics.ts';
import { estimatedCost } from '../../src/agent/enhanced/cost.ts';
import { ProcUsage, cpuBetween, parseMaxOpenFiles, parseNetDev, type UsageSnapshot } from '../../src/agent/enhanced/proc-usage.ts';
import type { AgentResource, LogRecord, MetricPoint, SecuritySignal, Span, TelemetryEvent, TelemetrySink } from '../../src/agent/model.ts';

class RecordingSink implements TelemetrySink {
  metrics: MetricPoint[] = [];
  addMetric(point: MetricPoint): void {
    this.metrics.push(point);
  }
  addSpans(_spans: Span[]): void {}
  addLog(_record: LogRecord): void {}
  addSecurity(_signal: SecuritySignal): void {}
  /** `name=value@requestId` of each point, in order, without the prefix. */
  summary(): string[] {
    return this.metrics.map((m) => `${m.name.replace('aws.lambda.enhanced.', '')}=${m.value}@${m.requestId ?? '-'}`);
  }
  named(name: string): MetricPoint[] {
    return this.metrics.filter((m) => m.name === `aws.lambda.enhanced.${name}`);
  }
}

const resource: AgentResource = ordersResource();

const baseTags = [
  'account_id:123456789012',
  'architecture:x86_64',
  'aws_account:123456789012',
  'env:prod',
  'executedversion:$LATEST',
  'functionname:orders-api',
  'memorysize:128',
  'region:us-east-1',
  'resource:orders-api',
  'runtime:nodejs22.x',
  'service:orders',
];
const coldTags = [...baseTags, 'cold_start:true'].sort();
const warmTags = [...baseTags, 'cold_start:false'].sort();

const NOW = 1_700_000_000_000;

function setup(options: { managed?: boolean; proc?: ProcUsage } = {}) {
  const sink = new RecordingSink();
  const metrics = new EnhancedMetrics({
    sink,
    resource,
    tags: ['service:orders', 'env:prod'],
    managedInstances: options.managed ?? false,
    proc: options.proc,
    now: () => NOW,
  });
  return { sink, metrics };
}

const ev = (type: string, record: unknown): TelemetryEvent => ({ time: '2026-01-01T00:00:00.000Z', type, record });
const initStart = ev('platform.initStart', { initializationType: 'on-demand', phase: 'init', functionName: 'Orders-API', functionVersion: '$LATEST' });
const initReport = (durationMs: number) => ev('platform.initReport', { initializationType: 'on-demand', phase: 'init', status: 'success', metrics: { durationMs } });
const start = (requestId: string) => ev('platform.start', { requestId, version: '$LATEST' });
const runtimeDone = (requestId: string, status: string, durationMs: number, extra: Record<string, unknown> = {}) =>
  ev('platform.runtimeDone', { requestId, status, metrics: { durationMs, producedBytes: 42 }, ...extra });
const report = (requestId: string, m: { durationMs: number; billedDurationMs: number; maxMemoryUsedMB: number; initDurationMs?: number }, status = 'success', extra: Record<string, unknown> = {}) =>
  ev('platform.report', { requestId, status, metrics: { memorySizeMB: 128, ...m }, ...extra });

describe('estimatedCost', () => {
  test("Lambda's price: 128 MB x 13 ms on x86_64, 1 GB x 1 s on arm64, rounded to 1e-12", () => {
    // 2e-7 + 0.013 s x 0.125 GB x 1.66667e-5 = 2e-7 + 2.70833875e-8 = 2.270833875e-7 -> 1e-12: 2.27083e-7
    assert.equal(estimatedCost(13, 128, 'x86_64'), 2.27083e-7);
    assert.equal(estimatedCost(1000, 1024, 'arm64'), 0.0000135334);
    assert.equal(estimatedCost(0, 128, 'x86_64'), 2e-7);
  });
});

describe('EnhancedMetrics: on-demand invocations', () => {
  test('a cold invocation: every metric, value and tag', () => {
    const { sink, metrics } = setup();
    metrics.handle(initStart);
    metrics.handle(initReport(180.5));
    metrics.invoked('r1');
    metrics.handle(start('r1'));
    metrics.handle(runtimeDone('r1', 'success', 10.5));
    metrics.handle(report('r1', { durationMs: 13, billedDurationMs: 13, maxMemoryUsedMB: 60, initDurationMs: 180.5 }));
    assert.deepEqual(sink.summary(), [
      'init_duration=0.1805@-',
      'invocations=1@r1',
      'runtime_duration=10.5@r1',
      'produced_bytes=42@r1',
      'duration=0.013@r1',
      'billed_duration=0.013@r1',
      'max_memory_used=60@r1',
      'memorysize=128@r1',
      'estimated_cost=2.27083e-7@r1',
      'post_runtime_duration=2.5@r1',
    ]);
    assert.deepEqual(sink.named('init_duration')[0]!.tags, [...coldTags, 'init_type:on-demand'].sort());
    for (const m of sink.metrics.slice(1)) {
      assert.deepEqual(m.tags, coldTags, m.name);
      assert.equal(m.type, 'distribution');
      assert.deepEqual(m.values, [m.value]);
      assert.equal(m.timestamp, NOW);
    }
  });

  test('a warm invocation is cold_start:false and has no init_duration', () => {
    const { sink, metrics } = setup();
    metrics.invoked('r1');
    metrics.handle(runtimeDone('r1', 'success', 5));
    metrics.handle(report('r1', { durationMs: 6, billedDurationMs: 6, maxMemoryUsedMB: 50, initDurationMs: 100 }));
    sink.metrics.length = 0;
    metrics.invoked('r2');
    metrics.handle(runtimeDone('r2', 'success', 7.25));
    metrics.handle(report('r2', { durationMs: 8.5, billedDurationMs: 9, maxMemoryUsedMB: 51 }));
    assert.deepEqual(sink.summary(), [
      'invocations=1@r2',
      'runtime_duration=7.25@r2',
      'produced_bytes=42@r2',
      'duration=0.0085@r2',
      'billed_duration=0.009@r2',
      'max_memory_used=51@r2',
      'memorysize=128@r2',
      `estimated_cost=${estimatedCost(9, 128, 'x86_64')}@r2`,
      'post_runtime_duration=1.25@r2',
    ]);
    for (const m of sink.metrics) assert.deepEqual(m.tags, warmTags);
  });

  test('init_duration comes from the report when there was no initReport, once', () => {
    const { sink, metrics } = setup();
    metrics.invoked('r1');
    metrics.handle(report('r1', { durationMs: 1, billedDurationMs: 1, maxMemoryUsedMB: 10, initDurationMs: 250 }));
    metrics.handle(initReport(300));
    assert.deepEqual(sink.named('init_duration').map((m) => [m.value, m.requestId]), [[0.25, 'r1']]);
  });

  test('a timeout counts an error and a timeout', () => {
    const { sink, metrics } = setup();
    metrics.invoked('r1');
    metrics.handle(runtimeDone('r1', 'timeout', 3000.2, { errorType: 'Sandbox.Timedout' }));
    metrics.handle(report('r1', { durationMs: 3000.5, billedDurationMs: 3000, maxMemoryUsedMB: 70 }, 'timeout', { errorType: 'Sandbox.Timedout' }));
    assert.deepEqual(sink.summary().filter((s) => /^(errors|timeouts|out_of_memory)=/.test(s)), ['errors=1@r1', 'timeouts=1@r1']);
    assert.equal(sink.named('duration')[0]!.value, 3.0005);
  });

  test('an error counts an error only', () => {
    const { sink, metrics } = setup();
    metrics.invoked('r1');
    metrics.handle(runtimeDone('r1', 'error', 12, { errorType: 'Runtime.Unhandled' }));
    metrics.handle(report('r1', { durationMs: 13, billedDurationMs: 13, maxMemoryUsedMB: 70 }, 'error'));
    assert.deepEqual(sink.summary().filter((s) => /^(errors|timeouts|out_of_memory)=/.test(s)), ['errors=1@r1']);
  });

  test('out_of_memory once per request, whichever of runtimeDone, report and the log says so', () => {
    const { sink, metrics } = setup();
    // All three sources for r1.
    metrics.invoked('r1');
    metrics.outOfMemory('r1');
    metrics.handle(runtimeDone('r1', 'error', 500, { errorType: 'Runtime.OutOfMemory' }));
    metrics.handle(report('r1', { durationMs: 501, billedDurationMs: 501, maxMemoryUsedMB: 128 }, 'error'));
    // Only the report's memory for r2.
    metrics.invoked('r2');
    metrics.handle(runtimeDone('r2', 'success', 5));
    metrics.handle(report('r2', { durationMs: 6, billedDurationMs: 6, maxMemoryUsedMB: 128 }));
    // Only the log for r3.
    metrics.invoked('r3');
    metrics.outOfMemory('r3');
    metrics.handle(runtimeDone('r3', 'failure', 5));
    metrics.handle(report('r3', { durationMs: 6, billedDurationMs: 6, maxMemoryUsedMB: 90 }, 'failure'));
    assert.deepEqual(sink.named('out_of_memory').map((m) => [m.requestId, m.tags.includes('cold_start:true')]), [
      ['r1', true],
      ['r2', false],
      ['r3', false],
    ]);
    assert.deepEqual(sink.named('errors').map((m) => m.requestId), ['r1', 'r3']);
  });

  test('a report without runtimeDone (a crash) still counts the error; a repeated runtimeDone counts once', () => {
    const { sink, metrics } = setup();
    metrics.invoked('r1');
    metrics.handle(report('r1', { durationMs: 6, billedDurationMs: 6, maxMemoryUsedMB: 40 }, 'failure', { errorType: 'Runtime.ExitError' }));
    metrics.invoked('r2');
    metrics.handle(runtimeDone('r2', 'error', 5));
    metrics.handle(runtimeDone('r2', 'error', 5));
    metrics.handle(report('r2', { durationMs: 6, billedDurationMs: 6, maxMemoryUsedMB: 40 }, 'error'));
    assert.deepEqual(sink.named('errors').map((m) => m.requestId), ['r1', 'r2']);
    assert.equal(sink.named('runtime_duration').length, 1);
    assert.equal(sink.named('post_runtime_duration').length, 1, 'no runtimeDone for r1: no post-runtime figure');
  });

  test('shutdown: shutdowns, and unused_init only when nothing was ever invoked', async () => {
    const idle = setup();
    await idle.metrics.shutdown();
    assert.deepEqual(idle.sink.summary(), ['shutdowns=1@-', 'unused_init=1@-']);
    assert.deepEqual(idle.sink.metrics[0]!.tags, warmTags);
    const used = setup();
    used.metrics.invoked('r1');
    await used.metrics.shutdown();
    assert.deepEqual(used.sink.summary(), ['invocations=1@r1', 'shutdowns=1@-']);
  });

  test('the runtime tag follows the resource once the agent learns the exact runtime', () => {
    const sink = new RecordingSink();
    const mutable: AgentResource = { ...resource, runtime: 'provided' };
    const metrics = new EnhancedMetrics({ sink, resource: mutable, tags: [], managedInstances: false, now: () => NOW });
    metrics.invoked('r1');
    mutable.runtime = 'nodejs22.x';
    metrics.invoked('r2');
    assert.deepEqual(sink.metrics.map((m) => m.tags.find((t) => t.startsWith('runtime:'))), ['runtime:provided', 'runtime:nodejs22.x']);
  });

  test('malformed records are ignored without an exception', () => {
    const { sink, metrics } = setup();
    const bad: unknown[] = [
      undefined,
      null,
      { type: 'platform.report' },
      ev('platform.report', null),
      ev('platform.report', 'REPORT RequestId: x'),
      ev('platform.report', { status: 'success', metrics: { durationMs: 5 } }),
      ev('platform.runtimeDone', { requestId: 42, status: 'error' }),
      ev('platform.initReport', { metrics: 'x' }),
      ev('platform.initReport', { metrics: { durationMs: 'slow' } }),
      ev('platform.start', { requestId: ['x'] }),
      ev('platform.somethingNew', { requestId: 'x' }),
      ev('function', 'a log line'),
    ];
    for (const e of bad) metrics.handle(e as TelemetryEvent);
    assert.deepEqual(sink.metrics, []);
    // Wrong types inside a valid record: those figures are skipped, the rest kept.
    metrics.handle(ev('platform.report', { requestId: 'r', status: 'success', metrics: { durationMs: '13', billedDurationMs: 13, memorySizeMB: null, maxMemoryUsedMB: Infinity } }));
    assert.deepEqual(sink.summary(), ['billed_duration=0.013@r']);
  });
});

describe('EnhancedMetrics: managed instances', () => {
  test('platform.start counts; the report gives duration and runtime_duration (responseLatency); no billing, no cold_start', async () => {
    const { sink, metrics } = setup({ managed: true });
    metrics.handle(start('m1'));
    metrics.handle(start('m1'));
    metrics.handle(
      ev('platform.report', {
        requestId: 'm1',
        status: 'success',
        metrics: { durationMs: 25 },
        spans: [
          { name: 'responseLatency', start: '2026-01-01T00:00:00.000Z', durationMs: 20.5 },
          { name: 'responseDuration', start: '2026-01-01T00:00:00.020Z', durationMs: 1 },
        ],
      }),
    );
    metrics.handle(start('m2'));
    metrics.handle(ev('platform.report', { requestId: 'm2', status: 'error', errorType: 'Runtime.Unhandled', metrics: { durationMs: 30 } }));
    assert.deepEqual(sink.summary(), [
      'invocations=1@m1',
      'duration=0.025@m1',
      'runtime_duration=20.5@m1',
      'invocations=1@m2',
      'duration=0.03@m2',
      'runtime_duration=30@m2',
      'errors=1@m2',
    ]);
    for (const m of sink.metrics) assert.deepEqual(m.tags, [...baseTags].sort());
    await metrics.shutdown();
  });
});

describe('ProcUsage against the real /proc', () => {
  const children: ChildProcess[] = [];
  after(() => {
    for (const c of children) c.kill('SIGKILL');
  });

  /** A child in a "sandbox" of its own (marked by NIMBUS_SANDBOX_ADDRESS) that burns CPU on request. */
  async function sandboxChild(address: string): Promise<{ child: ChildProcess; burn: (ms: number) => Promise<number> }> {
    const code = `
      process.stdin.on('data', (d) => {
        const ms = Number(String(d).trim());
        const before = process.cpuUsage();
        const end = Date.now() + ms;
        while (Date.now() < end) {}
        const used = process.cpuUsage(before);
        process.stdout.write(String((used.user + used.system) / 1000) + '\\n');
      });
      process.stdout.write('ready\\n');`;
    const child = spawn(process.execPath, ['-e', code], { env: { ...process.env, NIMBUS_SANDBOX_ADDRESS: address }, stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(child);
    const lines: string[] = [];
    const waiters: Array<(line: string) => void> = [];
    let buffer = '';
    child.stdout!.on('data', (d: Buffer) => {
      buffer += d.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        const w = waiters.shift();
        if (w) w(line);
        else lines.push(line);
      }
    });
    const nextLine = () => new Promise<string>((resolve) => (lines.length > 0 ? resolve(lines.shift()!) : waiters.push(resolve)));
    assert.equal(await nextLine(), 'ready');
    return {
      child,
      burn: async (ms) => {
        child.stdin!.write(`${ms}\n`);
        return Number(await nextLine());
      },
    };
  }

  test('the sandbox is the processes carrying its NIMBUS_SANDBOX_ADDRESS, exactly', async () => {
    const { child } = await sandboxChild('127.77.250.1');
    // Another environment: a different address that shares a prefix.
    const { child: other } = await sandboxChild('127.77.250.10');
    const proc = new ProcUsage({ sandboxAddress: '127.77.250.1' });
    assert.deepEqual(await proc.pids(), [child.pid]);
    assert.ok(!(await proc.pids()).includes(other.pid!));
    const all = await new ProcUsage().pids();
    assert.ok(all.includes(process.pid) && all.includes(child.pid!) && all.includes(other.pid!));
  });

  test('snapshot, counts, tmp and limits read real figures', async () => {
    const { child } = await sandboxChild('127.77.250.2');
    const proc = new ProcUsage({ sandboxAddress: '127.77.250.2' });
    const snap = await proc.snapshot();
    assert.deepEqual([...snap.cpu.keys()], [child.pid]);
    const counts = await proc.counts();
    const childThreads = Number(/^Threads:\s+(\d+)/m.exec(await readFile(`/proc/${child.pid}/status`, 'latin1'))![1]);
    assert.equal(counts.threadsUse, childThreads);
    assert.ok(counts.fdUse! >= 3, `fd_use ${counts.fdUse}`);
    const tmp = (await proc.tmp())!;
    assert.ok(tmp.maxBytes > 0 && tmp.usedBytes >= 0 && tmp.freeBytes >= 0 && tmp.usedBytes + tmp.freeBytes <= tmp.maxBytes);
    const limits = await proc.limits();
    assert.equal(limits.numCores, os.availableParallelism());
    assert.equal(limits.fdMax, parseMaxOpenFiles(await readFile('/proc/self/limits', 'latin1')));
    assert.equal(limits.threadsMax, Number((await readFile('/proc/sys/kernel/threads-max', 'latin1')).trim()));
  });

  test('usage metrics of an invocation: the CPU its sandbox burned, network, fds, threads, /tmp', async () => {
    const { burn } = await sandboxChild('127.77.250.3');
    const proc = new ProcUsage({ sandboxAddress: '127.77.250.3' });
    const { sink, metrics } = setup({ proc });
    metrics.invoked('r1');
    await metrics.idle();
    const burnedMs = await burn(300);
    metrics.handle(runtimeDone('r1', 'success', 300));
    metrics.handle(report('r1', { durationMs: 301, billedDurationMs: 301, maxMemoryUsedMB: 60 }));
    await metrics.idle();
    const value = (name: string) => {
      const points = sink.named(name);
      assert.equal(points.length, 1, name);
      assert.equal(points[0]!.requestId, 'r1');
      assert.deepEqual(points[0]!.tags, coldTags);
      return points[0]!.value;
    };
    const user = value('cpu_user_time');
    const system = value('cpu_system_time');
    const total = value('cpu_total_time');
    assert.equal(total, user + system);
    // /proc counts in 10 ms ticks; the child measured its own usage in microseconds.
    assert.ok(total >= burnedMs - 20, `cpu_total_time ${total} ms vs ${burnedMs} ms burned`);
    assert.ok(value('cpu_total_utilization') > 0);
    assert.ok(value('cpu_total_utilization_pct') > 0);
    assert.equal(value('num_cores'), os.availableParallelism());
    const rx = value('rx_bytes');
    const tx = value('tx_bytes');
    assert.equal(value('total_network'), rx + tx);
    assert.ok(value('fd_use') >= 3);
    assert.ok(value('threads_use') >= 1);
    assert.ok(value('fd_max') > 0);
    assert.ok(value('threads_max') > 0);
    assert.ok(value('tmp_max') > 0);
    assert.ok(value('tmp_used') >= 0);
    assert.ok(value('tmp_free') >= 0);
  });

  test('managed instances report fd, threads and /tmp at SHUTDOWN', async () => {
    await sandboxChild('127.77.250.4');
    const { sink, metrics } = setup({ managed: true, proc: new ProcUsage({ sandboxAddress: '127.77.250.4' }) });
    await metrics.shutdown();
    const names = sink.metrics.map((m) => m.name.replace('aws.lambda.enhanced.', ''));
    for (const n of ['shutdowns', 'unused_init', 'tmp_max', 'tmp_used', 'tmp_free', 'fd_use', 'fd_max', 'threads_use', 'threads_max']) assert.ok(names.includes(n), n);
    assert.ok(!names.includes('cpu_total_time'));
  });
});

describe('ProcUsage: parsing and failures', () => {
  test('/proc/net/dev: every interface but lo', () => {
    const text = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 1000 10 0 0 0 0 0 0 1000 10 0 0 0 0 0 0
vinternal_1: 5000 50 0 0 0 0 0 0 7000 70 0 0 0 0 0 0
  eth0:  300    3    0    0    0     0          0         0      400    4    0    0    0     0       0          0
`;
    assert.deepEqual(parseNetDev(text), { rxBytes: 5300, txBytes: 7400 });
    assert.equal(parseNetDev('garbage'), undefined);
    assert.equal(parseNetDev('    lo: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n'), undefined);
  });

  test('limits: soft open-files limit; unlimited or absent is no figure', () => {
    assert.equal(parseMaxOpenFiles('Max open files            1024                 4096                 files\n'), 1024);
    assert.equal(parseMaxOpenFiles('Max open files            unlimited            unlimited            files\n'), undefined);
    assert.equal(parseMaxOpenFiles(''), undefined);
  });

  test('cpuBetween: new processes count whole, reused pids restart, exited ones drop out', () => {
    const before: UsageSnapshot = { atMs: 0, cpu: new Map([[1, { userMs: 100, systemMs: 50 }], [2, { userMs: 500, systemMs: 500 }], [3, { userMs: 10, systemMs: 10 }]]) };
    const after: UsageSnapshot = { atMs: 10, cpu: new Map([[1, { userMs: 130, systemMs: 60 }], [2, { userMs: 20, systemMs: 5 }], [4, { userMs: 7, systemMs: 3 }]]) };
    assert.deepEqual(cpuBetween(before, after), { userMs: 30 + 20 + 7, systemMs: 10 + 5 + 3 });
  });

  test('a fake /proc with odd and missing files: what can be read is used, nothing throws', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'fake-proc-'));
    try {
      // pid 10: a command name with spaces and parentheses; utime 250, stime 50 ticks, 3 threads.
      await mkdir(path.join(root, '10', 'fd'), { recursive: true });
      await writeFile(path.join(root, '10', 'stat'), '10 (my (odd) proc) S 1 10 10 0 -1 4194304 0 0 0 0 250 50 0 0 20 0 3 0 100 0 0');
      for (const fd of ['0', '1', '2', '7']) await writeFile(path.join(root, '10', 'fd', fd), '');
      await writeFile(path.join(root, '10', 'environ'), 'A=1\0NIMBUS_SANDBOX_ADDRESS=127.77.1.1');
      // pid 11: no stat, no fd dir.
      await mkdir(path.join(root, '11'));
      await writeFile(path.join(root, '11', 'environ'), 'NIMBUS_SANDBOX_ADDRESS=127.77.1.1\0');
      // pid 12: a truncated stat; another sandbox.
      await mkdir(path.join(root, '12'));
      await writeFile(path.join(root, '12', 'stat'), '12 (x) S 1');
      await writeFile(path.join(root, '12', 'environ'), 'NIMBUS_SANDBOX_ADDRESS=127.77.1.12\0');
      await mkdir(path.join(root, 'self'));
      await mkdir(path.join(root, 'not-a-pid'));

      const proc = new ProcUsage({ procRoot: root, sandboxAddress: '127.77.1.1', tmpPath: path.join(root, 'no-such-dir') });
      assert.deepEqual((await proc.pids()).sort(), [10, 11]);
      const snap = await proc.snapshot();
      assert.deepEqual([...snap.cpu.entries()], [[10, { userMs: 2500, systemMs: 500 }]]);
      assert.equal(snap.network, undefined, 'no net/dev');
      assert.deepEqual(await proc.counts(), { fdUse: 4, threadsUse: 3 });
      assert.equal(await proc.tmp(), undefined);
      const limits = await proc.limits();
      assert.equal(limits.fdMax, undefined);
      assert.equal(limits.threadsMax, undefined);

      const everything = new ProcUsage({ procRoot: root });
      assert.deepEqual((await everything.pids()).sort(), [10, 11, 12]);
      const gone = new ProcUsage({ procRoot: path.join(root, 'missing') });
      assert.deepEqual(await gone.pids(), []);
      assert.deepEqual(await gone.counts(), {});
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
