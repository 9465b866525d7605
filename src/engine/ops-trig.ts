/**
 * Sine and cosine (rotary position embeddings take the angles of their positions through them),
 * each with its VJP, in the style of ./ops.ts.
 */
import { neg, unary } from './ops';

export const sin = unary('Sin', (g, y) => [g.mul(cos(y.inputs[0]))]);
export const cos = unary('Cos', (g, y) => [neg(g.mul(sin(y.inputs[0])))]);
