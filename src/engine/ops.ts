/**
 * Primitive ops. Each op is its forward (an ONNX node with a build-time shape rule) and, for
 * differentiable ops, its vector-Jacobian product right beside it, in the file of its concern.
 * Composite functions (layer norm, log-softmax, cross-entropy...) live in ./nn.ts.
 */
export type { Vjp, CustomVjp } from './ops-core';
export { vjpOf, withVjp, ONNX_DTYPE } from './ops-core';
export {
  unary,
  neg,
  exp,
  log,
  sqrt,
  reciprocal,
  tanh,
  sigmoid,
  erf,
  abs,
  relu,
  sign,
  not,
  detach,
  cast,
  add,
  sub,
  mul,
  div,
  pow,
  maximum,
  minimum,
  equal,
  less,
  greater,
  lessOrEqual,
  greaterOrEqual,
  and,
  or,
  where,
  clip,
} from './ops-elementwise';
export { matmul, gemm, dense } from './ops-matrix';
export { sum, sumSquares, mean, max, softmax, layerNormalization } from './ops-reduce';
export {
  shapeOf,
  unbroadcast,
  reshapeLike,
  expandLike,
  after,
  afterAll,
  zerosLike,
  reshape,
  transpose,
  expand,
  unsqueeze,
  concat,
} from './ops-shape';
export { slice, gather, gatherElements, addGradients, rowsAddedTo, cumsum, topkValues } from './ops-index';
export type { RowsAdded } from './ops-index';
