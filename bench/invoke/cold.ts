/**
 * The cold-start floors: bare Node start-up (`node -e 0`, spawn to exit) and a runtime
 * client's start (spawn to its first GET /next, handler loaded), each the median of N
 * spawns with the same minimal environment the contenders get.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FIXTURE_DIR } from './floor.ts';
import { baseEnv } from './procs.ts';
import { median } from './stats.ts';
import type { Median } from './types.ts';

export async function nodeBare(runs: number): Promise<Median> {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, ['-e', '0'], { env: baseEnv(), stdio: 'ignore' });
    await new Promise((r) => child.once('exit', r));
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return median(samples);
}

/** Spawn of `node <script>` as a Lambda runtime to its first `/next`, median of `runs`. */
export async function runtimeStart(script: string, runs: number): Promise<Median> {
  let arrived: (() => void) | undefined;
  // A Runtime API that notes the first /next and never answers it.
  const api = createServer((req) => {
    if (req.url === '/2018-06-01/runtime/invocation/next') arrived?.();
  });
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  const port = (api.address() as AddressInfo).port;
  const samples: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const t0 = process.hrtime.bigint();
      const child = spawn(process.execPath, [script], {
        cwd: FIXTURE_DIR,
        env: baseEnv({
          AWS_LAMBDA_RUNTIME_API: `127.0.0.1:${port}`,
          _HANDLER: 'index.handler',
          LAMBDA_TASK_ROOT: FIXTURE_DIR,
          AWS_LAMBDA_FUNCTION_NAME: 'cold',
          AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
          AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '128',
          AWS_LAMBDA_LOG_GROUP_NAME: '/aws/lambda/cold',
          AWS_LAMBDA_LOG_STREAM_NAME: '2026/01/01/[$LATEST]cold',
          AWS_REGION: 'us-east-1',
          TZ: ':UTC',
        }),
        stdio: 'ignore',
      });
      const exited = new Promise((r) => child.once('exit', r));
      const outcome = await Promise.race([
        new Promise<'next'>((r) => (arrived = () => r('next'))),
        exited.then(() => 'exit' as const),
        new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10_000).unref()),
      ]);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      child.kill('SIGKILL');
      await exited;
      if (outcome !== 'next') throw new Error(`${script}: no /next (${outcome})`);
      samples.push(ms);
    }
  } finally {
    api.closeAllConnections();
    api.close();
  }
  return median(samples);
}
