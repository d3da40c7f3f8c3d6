/**
 * `npm run build:layer`: writes the `nimbus-agent` layer, exactly as the server publishes
 * it, to dist/nimbus-agent-layer.zip (or the path given), for use on Lambda itself:
 * `aws lambda publish-layer-version --layer-name nimbus-agent --zip-file fileb://dist/nimbus-agent-layer.zip`.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { agentLayerZip } from '../src/layers/agent-layer.ts';

const out = path.resolve(process.argv[2] ?? 'dist/nimbus-agent-layer.zip');
await mkdir(path.dirname(out), { recursive: true });
const zip = await agentLayerZip();
await writeFile(out, zip);
process.stdout.write(`${out} (${(zip.length / 1024 / 1024).toFixed(1)} MB)\n`);
