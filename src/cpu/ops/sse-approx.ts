// rcpps/rcpss/rsqrtps/rsqrtss: 12-bit approximations. The SDM only bounds their error
// (|relative error| <= 1.5 * 2^-12); each vendor has its own tables. These reproduce the AMD
// host the differential tests run on, so the results compare exactly. Inputs whose reciprocal
// would be denormal give zero, denormal inputs count as zero; no MXCSR flags are raised.

import { RCP_FIRST, RCP_STEPS, RSQ_EVEN_FIRST, RSQ_EVEN_STEPS, RSQ_ODD_FIRST, RSQ_ODD_STEPS } from './sse-approx-tables.js';

function table(first: number, steps: string): Uint16Array {
  const t = new Uint16Array(4096);
  t[0] = first;
  for (let i = 1; i < 4096; i++) t[i] = t[i - 1] - (steps.charCodeAt(i - 1) - 48);
  return t;
}
const RCP = table(RCP_FIRST, RCP_STEPS);
const RSQ_EVEN = table(RSQ_EVEN_FIRST, RSQ_EVEN_STEPS);
const RSQ_ODD = table(RSQ_ODD_FIRST, RSQ_ODD_STEPS);

/** Approximate 1/x of binary32 bits. */
export function rcp32(a: number): number {
  const s = a & 0x80000000, e = (a >>> 23) & 0xff, m = a & 0x7fffff;
  if (e === 0xff) return m !== 0 ? a | 0x400000 : s; // NaN quieted; 1/inf = 0
  if (e === 0) return s | 0x7f800000; // zero or denormal
  const re = 253 - e; // table entries lie in [0.5, 1)
  if (re <= 0) return s;
  return s | (re << 23) | (RCP[m >>> 11] << 11);
}

/** Approximate 1/sqrt(x) of binary32 bits. */
export function rsqrt32(a: number): number {
  const s = a & 0x80000000, e = (a >>> 23) & 0xff, m = a & 0x7fffff;
  if (e === 0xff && m !== 0) return a | 0x400000;
  if (e === 0) return s | 0x7f800000;
  if (s !== 0) return 0xffc00000 | 0;
  if (e === 0xff) return 0;
  const k = e - 127;
  return (k & 1) === 0
    ? ((126 - k / 2) << 23) | (RSQ_EVEN[m >>> 11] << 11)
    : ((126 - (k - 1) / 2) << 23) | (RSQ_ODD[m >>> 11] << 11);
}
