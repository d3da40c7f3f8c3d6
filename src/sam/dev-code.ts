/**
 * `nimbus dev`'s code: functions run straight from their source folders (or, for
 * `BuildMethod: esbuild`, from a fresh esbuild output) instead of their deployed zip.
 *
 * DevInvoker is the invoker with one change: before an invoke of `$LATEST` of a function
 * under development, the environment spec's code dir becomes the current source (or
 * build) folder and its revision id gains the source generation, so environments of an
 * older generation are retired and the next invoke runs the new code. A file change marks
 * the function stale at once; invokes wait for the rebuild rather than run old code. A
 * failed build is what Lambda reports for a handler that does not parse: the invoke fails
 * with `Runtime.UserCodeSyntaxError` and esbuild's message; the old code is not kept.
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Invoker } from '../invoker/invoker.ts';
import type { EnvironmentSpec, InvokeRequest, InvokeResult } from '../environments/types.ts';
import { RuntimeErrorType } from '../errors/runtime-error-types.ts';
import { buildWithEsbuild, BuildError } from './esbuild-build.ts';
import type { FunctionPlan } from './plan.ts';

type CodeState = { kind: 'ready'; codeDir: string; generation: number } | { kind: 'build-failed'; message: string; generation: number };

export type ReloadListener = (functionName: string, state: CodeState) => void;

/** One function under development: its source, and what its current code is. */
export class DevFunction {
  readonly plan: FunctionPlan;
  readonly #buildRoot: string;
  readonly #onReload: ReloadListener;
  #generation = 0;
  #state: Promise<CodeState>;
  #pending: ((next: Promise<CodeState>) => void) | undefined;

  constructor(plan: FunctionPlan, buildRoot: string, onReload: ReloadListener) {
    this.plan = plan;
    this.#buildRoot = buildRoot;
    this.#onReload = onReload;
    this.#state = this.#load(0);
  }

  /** The code to run now; waits while a rebuild is under way. */
  current(): Promise<CodeState> {
    return this.#state;
  }

  /** A source file changed: from now on invokes wait for the new code (reload() brings it). */
  beginChange(): void {
    if (this.#pending) return;
    let resolve!: (next: Promise<CodeState>) => void;
    this.#state = new Promise<CodeState>((r) => (resolve = r));
    this.#pending = resolve;
  }

  /** Loads (builds) the current source as a new generation. */
  reload(): Promise<CodeState> {
    const generation = ++this.#generation;
    const next = this.#load(generation).then((state) => {
      this.#onReload(this.plan.functionName, state);
      return state;
    });
    this.#pending?.(next);
    this.#pending = undefined;
    this.#state = next;
    return next;
  }

  async #load(generation: number): Promise<CodeState> {
    if (!this.plan.esbuild) return { kind: 'ready', codeDir: this.plan.codeDir, generation };
    // A folder per generation: environments of the previous one may still be reading theirs.
    const outDir = path.join(this.#buildRoot, this.plan.logicalId, String(generation));
    try {
      await mkdir(outDir, { recursive: true });
      await buildWithEsbuild(this.plan.codeDir, this.plan.handler, this.plan.esbuild, outDir);
      if (generation >= 2) await rm(path.join(this.#buildRoot, this.plan.logicalId, String(generation - 2)), { recursive: true, force: true });
      return { kind: 'ready', codeDir: outDir, generation };
    } catch (err) {
      if (!(err instanceof BuildError)) throw err;
      return { kind: 'build-failed', message: err.message, generation };
    }
  }
}

/** Functions under development, by function name. */
export class DevCodeRegistry {
  readonly #functions = new Map<string, DevFunction>();

  add(fn: DevFunction): void {
    this.#functions.set(fn.plan.functionName, fn);
  }

  get(functionName: string): DevFunction | undefined {
    return this.#functions.get(functionName);
  }

  all(): DevFunction[] {
    return [...this.#functions.values()];
  }
}

/** What Lambda answers when the handler's module does not parse (Node runtime: UserCodeSyntaxError). */
function syntaxErrorResult(request: InvokeRequest, message: string): InvokeResult {
  const payload = { errorType: RuntimeErrorType.UserCodeSyntaxError, errorMessage: `SyntaxError: ${message}`, trace: message.split('\n') };
  return {
    outcome: { kind: 'function-error', errorType: RuntimeErrorType.UserCodeSyntaxError, payload: Buffer.from(JSON.stringify(payload)) },
    requestId: request.requestId,
    durationMs: 0,
    billedDurationMs: 0,
    maxMemoryUsedMb: 0,
  };
}

export class DevInvoker extends Invoker {
  readonly #registry: DevCodeRegistry;

  constructor(options: ConstructorParameters<typeof Invoker>[0], registry: DevCodeRegistry) {
    super(options);
    this.#registry = registry;
  }

  override async invoke(spec: EnvironmentSpec, request: InvokeRequest): Promise<InvokeResult> {
    const dev = spec.version === '$LATEST' ? this.#registry.get(spec.functionName) : undefined;
    if (!dev) return super.invoke(spec, request);
    const state = await dev.current();
    if (state.kind === 'build-failed') return syntaxErrorResult(request, state.message);
    return super.invoke({ ...spec, codeDir: state.codeDir, revisionId: `${spec.revisionId}+dev${state.generation}` }, request);
  }
}
