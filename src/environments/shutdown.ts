/**
 * Lambda's Shutdown phase for one environment (shared/reference/lambda-interfaces.md §2.4,
 * RIE rapid/shutdown.go): with no extension registered the runtime is killed at once;
 * otherwise the runtime gets SIGTERM and its share of the budget, then each external
 * extension registered for SHUTDOWN gets the event with the deadline, and whatever still
 * runs at the deadline is killed. Extensions not registered for SHUTDOWN are killed.
 */
import type { Extension, ExtensionRegistry } from './extension-registry.ts';
import { shutdownBudget, type ShutdownReason } from './lifecycle.ts';
import type { EnvironmentProcess } from './processes.ts';
import type { TelemetryHub } from './telemetry-hub.ts';

export interface ShutdownTargets {
  runtime: EnvironmentProcess | undefined;
  extensions: ReadonlyArray<{ extension: Extension; process: EnvironmentProcess }>;
  registry: ExtensionRegistry;
  hub: TelemetryHub;
  reason: ShutdownReason;
}

/** After SIGKILL a process is gone within moments; this only guards against a stuck one. */
const killWaitMs = 5000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)).unref());

async function settle(processes: EnvironmentProcess[], ms: number): Promise<void> {
  await Promise.race([Promise.all(processes.map((p) => p.exited)), sleep(ms)]);
}

export async function shutdownProcesses(t: ShutdownTargets): Promise<void> {
  const all = [...(t.runtime ? [t.runtime] : []), ...t.extensions.map((e) => e.process)];
  const registeredExternal = t.extensions.filter((e) => e.extension.active && e.process.running);
  const budget = shutdownBudget(registeredExternal.length, t.registry.internalCount);
  if (budget.totalMs === 0) {
    for (const p of all) p.kill();
    await settle(all, killWaitMs);
    return;
  }
  const deadline = performance.now() + budget.totalMs;
  if (t.runtime?.running) {
    t.runtime.terminate();
    await settle([t.runtime], budget.runtimeMs);
    t.runtime.kill();
  }
  // Extensions usually send what they hold when SHUTDOWN comes: let telemetry go first.
  t.hub.flushNow();
  const waiting: EnvironmentProcess[] = [];
  for (const { extension, process } of t.extensions) {
    if (!process.running) continue;
    if (extension.active && extension.events.has('SHUTDOWN')) {
      const deadlineMs = Math.round(Date.now() + (deadline - performance.now()));
      t.registry.deliver(extension, { eventType: 'SHUTDOWN', shutdownReason: t.reason, deadlineMs });
      waiting.push(process);
    } else {
      process.kill();
    }
  }
  if (waiting.length > 0) await settle(waiting, deadline - performance.now());
  for (const p of all) p.kill();
  await settle(all, killWaitMs);
}
