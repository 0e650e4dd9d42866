/**
 * @file `ad.io`: reading and writing tensors. Safetensors (the real format, byte-compatible
 * with the reference implementation) for any pytree of tensors, named by tree paths.
 *
 * @example
 * const bytes = ad.io.saveSafetensors(model.stateDict());
 * model.loadStateDict(ad.io.loadSafetensors(bytes));
 */

export {
  loadSafetensors,
  parseSafetensors,
  type SafetensorsContents,
  SafetensorsError,
  type SafetensorsErrorCode,
  type SafetensorsTree,
  type SaveSafetensorsOptions,
  saveSafetensors,
} from "./safetensors.js";
