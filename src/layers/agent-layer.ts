/**
 * The `nimbus-agent` layer: the agent program (src/agent, bundled by esbuild into one ESM
 * file), the extension launcher Lambda starts from /opt/extensions, the exec wrapper that
 * points a runtime at the agent's Runtime API proxy, and what threat detection needs at
 * run time (libddwaf's Node binding and Datadog's recommended ruleset).
 *
 * Built once per content: the zip is cached under the OS temp dir by a hash of the agent's
 * sources and of the native binding's version, so server starts after the first cost a
 * hash of ~50 small files, not a bundle.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { cp, mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { zipFolder } from '../artifacts/zip-folder.ts';

export const agentLayerName = 'nimbus-agent';

const agentSourceDir = fileURLToPath(new URL('../agent/', import.meta.url));
const require = createRequire(import.meta.url);

/**
 * The launcher Lambda runs as an external extension. The agent is JavaScript: it runs on
 * the `node` first on PATH (the function's own Node.js, or the host's for other runtimes).
 */
const extensionLauncher = `#!/bin/bash
# The runtime starts only once every extension has registered, and Node takes some 40 ms
# to boot: so this script registers first, with bash's /dev/tcp, and the agent takes the
# identifier over. Not when the Runtime API proxy is asked for (it must be up before the
# runtime starts), and never fatal: if anything here fails the agent registers itself.
agent="\${0%/extensions/*}/nimbus-agent/agent.mjs"
api="\$AWS_LAMBDA_RUNTIME_API"
if [ "\$AWS_LAMBDA_EXEC_WRAPPER" != /opt/nimbus-wrapper ] && [ -n "\$api" ] && exec 3<>"/dev/tcp/\${api%:*}/\${api##*:}"; then
  events='["INVOKE","SHUTDOWN"]'
  [ "\$AWS_LAMBDA_INITIALIZATION_TYPE" = lambda-managed-instances ] && events='["SHUTDOWN"]'
  body="{\\"events\\":\$events}"
  printf 'POST /2020-01-01/extension/register HTTP/1.1\\r\\nHost: %s\\r\\nLambda-Extension-Name: nimbus-agent\\r\\nLambda-Extension-Accept-Feature: accountId\\r\\nContent-Type: application/json\\r\\nContent-Length: %s\\r\\nConnection: close\\r\\n\\r\\n%s' "\$api" "\${#body}" "\$body" >&3
  IFS= read -r status <&3
  id=
  while IFS= read -r line <&3; do
    line="\${line%\$'\\r'}"
    [ -z "\$line" ] && break
    case "\${line,,}" in lambda-extension-identifier:*) id="\${line#*: }" ;; esac
  done
  registration=
  IFS= read -r -d '' registration <&3
  exec 3<&-
  case "\$status" in
    *" 200 "*) [ -n "\$id" ] && export NIMBUS_AGENT_EXTENSION_ID="\$id" NIMBUS_AGENT_REGISTRATION="\$registration" ;;
  esac
fi
# A 1 MB young generation: the agent allocates little per event, and V8's default (16 MB
# semi-spaces) only shows up as resident memory counted against the function's memory size.
exec node --max-semi-space-size=1 "\$agent"
`;

/**
 * AWS_LAMBDA_EXEC_WRAPPER=/opt/nimbus-wrapper: the runtime talks to the agent's proxy
 * instead of the Runtime API. Only when the agent says its proxy is up (a file it writes
 * before it registers), so a broken agent never cuts a function off from its events.
 */
const execWrapper = `#!/bin/sh
ready="\${TMPDIR:-/tmp}/.nimbus-agent-proxy"
if [ -r "$ready" ]; then
  AWS_LAMBDA_RUNTIME_API="$(cat "$ready")"
  export AWS_LAMBDA_RUNTIME_API
fi
exec "$@"
`;

async function listTs(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listTs(full)));
    else if (e.name.endsWith('.ts')) out.push(full);
  }
  return out.sort();
}

function packageDir(name: string): string {
  return path.dirname(require.resolve(`${name}/package.json`));
}

function recommendedRulesPath(): string {
  return require.resolve('dd-trace/packages/dd-trace/src/appsec/recommended.json');
}

async function contentHash(): Promise<string> {
  const hash = createHash('sha256');
  for (const file of await listTs(agentSourceDir)) {
    hash.update(path.relative(agentSourceDir, file)).update(await readFile(file));
  }
  hash.update(await readFile(path.join(packageDir('@datadog/native-appsec'), 'package.json')));
  hash.update(await readFile(recommendedRulesPath()));
  hash.update(extensionLauncher).update(execWrapper);
  return hash.digest('hex').slice(0, 16);
}

/** Writes the layer's tree (what /opt looks like) into `root`. */
export async function writeAgentLayerTree(root: string): Promise<void> {
  const agentDir = path.join(root, 'nimbus-agent');
  await mkdir(path.join(root, 'extensions'), { recursive: true });
  await mkdir(agentDir, { recursive: true });
  await build({
    entryPoints: { agent: path.join(agentSourceDir, 'main.ts') },
    outdir: agentDir,
    outExtension: { '.js': '.mjs' },
    // What only some functions use (the Datadog backend, threat detection) is split into
    // chunks loaded on demand: every module evaluated at start is Init Duration.
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    platform: 'node',
    format: 'esm',
    // The agent runs on whatever Node the sandbox has; Node 20 is the oldest we meet.
    target: 'node20',
    minify: true,
    legalComments: 'none',
    external: ['@datadog/native-appsec'],
    // Bundled CommonJS packages (protobufjs) call require for Node built-ins.
    banner: { js: "import { createRequire as __nimbusRequire } from 'node:module'; const require = __nimbusRequire(import.meta.url);" },
    logLevel: 'silent',
  });
  await cp(recommendedRulesPath(), path.join(agentDir, 'recommended.json'));
  // libddwaf's binding and its loader, Linux builds only (the sandbox is Linux).
  const modules = path.join(agentDir, 'node_modules');
  const appsec = packageDir('@datadog/native-appsec');
  await cp(appsec, path.join(modules, '@datadog', 'native-appsec'), {
    recursive: true,
    filter: (src) => {
      const rel = path.relative(appsec, src);
      return !rel.startsWith('prebuilds' + path.sep) || rel.split(path.sep)[1]?.startsWith('linux') === true;
    },
  });
  await cp(packageDir('node-gyp-build'), path.join(modules, 'node-gyp-build'), { recursive: true });
  await writeFile(path.join(root, 'extensions', agentLayerName), extensionLauncher, { mode: 0o755 });
  await writeFile(path.join(root, 'nimbus-wrapper'), execWrapper, { mode: 0o755 });
}

/** The layer as a zip, built on first use and cached by content. */
export async function agentLayerZip(cacheDir = path.join(os.tmpdir(), 'nimbus-agent-layer')): Promise<Buffer> {
  const file = path.join(cacheDir, `${await contentHash()}.zip`);
  try {
    return await readFile(file);
  } catch {
    // not built yet
  }
  await mkdir(cacheDir, { recursive: true });
  const work = await mkdtemp(path.join(cacheDir, 'build-'));
  try {
    await writeAgentLayerTree(work);
    const zip = await zipFolder(work);
    // Written aside then renamed: a concurrent server start never reads half a zip.
    const partial = `${file}.${process.pid}.partial`;
    await writeFile(partial, zip);
    await rename(partial, file);
    return zip;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
