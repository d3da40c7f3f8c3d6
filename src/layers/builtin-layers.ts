/**
 * Layers Nimbus ships: today the `nimbus-agent` layer. It is published into the account's
 * own layers at server start (ListLayers shows it, a function adds it by ARN like any
 * layer), and republished as a new version only when its content changed, so functions
 * pinned to a version keep exactly what they were deployed with.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../logging/logger.ts';
import type { LayerService } from './layer-service.ts';
import type { LayerVersionRecord } from './types.ts';
import { agentLayerName, agentLayerZip } from './agent-layer.ts';

const description = 'Nimbus agent: enhanced metrics, DogStatsD, traces, OTLP, logs and threat detection (built in)';

export async function publishBuiltinLayers(layers: LayerService, logger: Logger): Promise<LayerVersionRecord> {
  const zip = await agentLayerZip();
  const sha = createHash('sha256').update(zip).digest('base64');
  const latest = (await layers.listVersions({ layerName: agentLayerName }, {}, undefined, 1)).items[0];
  if (latest?.codeSha256 === sha) return latest;
  const record = await layers.publish({ layerName: agentLayerName }, {
    Content: { ZipFile: zip.toString('base64') },
    Description: description,
    CompatibleArchitectures: ['x86_64', 'arm64'],
    LicenseInfo: 'Apache-2.0',
  });
  logger.info('built-in layer published', { layerName: agentLayerName, version: record.version });
  return record;
}
