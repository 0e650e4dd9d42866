/** @file `ad.autograd`: the functional entry points of eager (PyTorch-style) autograd. */

export {
  type AutogradGradOptions,
  type BackwardOptions,
  backward,
  grad,
  type HookHandle,
} from "./autograd.js";
