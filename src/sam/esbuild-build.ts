/**
 * Builds a function the way `sam build` does for `Metadata: BuildMethod: esbuild`: each
 * entry point bundled for Node (platform node, CommonJS unless Format says esm, target
 * es2020 unless Target says otherwise) into an output folder that keeps the entry
 * points' paths relative to CodeUri, so `Handler: app.handler` finds `app.js`. Entry
 * points default to the handler's module (`src/app.handler` -> `src/app.ts` or `.js`...).
 * esbuild is loaded only when a template asks for it.
 */
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { EsbuildProperties } from './plan.ts';

export class BuildError extends Error {
  override readonly name = 'BuildError';
}

const sourceExtensions = ['.ts', '.mts', '.cts', '.tsx', '.js', '.mjs', '.cjs', '.jsx'];

function defaultEntryPoint(codeDir: string, handler: string): string {
  const dot = handler.lastIndexOf('.');
  const module = dot > 0 ? handler.slice(0, dot) : handler;
  for (const ext of sourceExtensions) if (existsSync(path.join(codeDir, module + ext))) return module + ext;
  throw new BuildError(`No source file for handler ${handler} in ${codeDir} (looked for ${module}{${sourceExtensions.join(',')}}); set Metadata.BuildProperties.EntryPoints.`);
}

function pairs(list: string[] | undefined, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list ?? []) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new BuildError(`${what} entries look like ".js=.mjs", got ${item}.`);
    out[item.slice(0, eq).trim()] = item.slice(eq + 1).trim();
  }
  return out;
}

/** Builds into `outDir` (emptied first); throws BuildError carrying esbuild's formatted messages. */
export async function buildWithEsbuild(codeDir: string, handler: string, props: EsbuildProperties, outDir: string): Promise<void> {
  const esbuild = await import('esbuild');
  const entryPoints = props.entryPoints ?? [defaultEntryPoint(codeDir, handler)];
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  const banner = props.banner === undefined ? undefined : pairs([props.banner], 'Banner');
  try {
    await esbuild.build({
      absWorkingDir: codeDir,
      entryPoints,
      outdir: outDir,
      outbase: codeDir,
      bundle: true,
      platform: 'node',
      format: props.format ?? 'cjs',
      target: props.target ?? 'es2020',
      minify: props.minify ?? false,
      sourcemap: props.sourcemap ?? false,
      external: props.external,
      outExtension: pairs(props.outExtension, 'OutExtension'),
      loader: pairs(props.loader, 'Loader') as Record<string, 'file' | 'text' | 'json' | 'base64' | 'binary' | 'dataurl' | 'copy'>,
      ...(banner ? { banner } : {}),
      ...(props.mainFields ? { mainFields: props.mainFields.split(',') } : {}),
      logLevel: 'silent',
      write: true,
    });
  } catch (err) {
    const errors = (err as { errors?: Parameters<typeof esbuild.formatMessages>[0] }).errors;
    if (!errors || errors.length === 0) throw new BuildError(`esbuild failed: ${(err as Error).message}`);
    const formatted = await esbuild.formatMessages(errors, { kind: 'error', color: false });
    throw new BuildError(formatted.join('').trimEnd());
  }
}
