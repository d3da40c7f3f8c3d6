export type * from './types.ts';
export { LayerService, maxLayersPerFunction } from './layer-service.ts';
export type { LayerServiceOptions } from './layer-service.ts';
export { FileOptMerger, dropEscapingLinks, staysInside } from './merged-opt.ts';
export type { FileOptMergerOptions } from './merged-opt.ts';
export {
  checkFunctionLayerList,
  layerArn,
  layerVersionArn,
  parseFunctionLayerArn,
  parseLayerName,
  parseLayerVersionArn,
  parseVersionNumber,
} from './layer-arn.ts';
export type { LayerNameRef } from './layer-arn.ts';
export { checkListFilters, checkPublishInput, layerLimits } from './publish-input.ts';
export type { PublishInput } from './publish-input.ts';
