// The x87 opcode rows D8..DF and fwait (9B). Each row picks its handler from ModRM: the
// memory forms by reg, the register forms by reg and rm. Undocumented aliases the host
// executes (fcom2/fcomp3/fcomp5, fxch4/fxch7, fstp1/fstp8/fstp9, ffreep) are included.

import { def, type Handler, type Insn } from '../insn.js';
import * as A from './x87-arith.js';
import * as C from './x87-compare.js';
import * as L from './x87-load-store.js';
import * as X from './x87-control.js';
import * as T from './x87-trans.js';

type Row = (Handler | undefined)[];

const D8_MEM: Row = [A.arith_m32fp, A.arith_m32fp, C.fcom_m32fp, C.fcom_m32fp, A.arith_m32fp, A.arith_m32fp, A.arith_m32fp, A.arith_m32fp];
const D8_REG: Row = [A.arith_st0_sti, A.arith_st0_sti, C.fcom_sti, C.fcomp_sti, A.arith_st0_sti, A.arith_st0_sti, A.arith_st0_sti, A.arith_st0_sti];
const D9_MEM: Row = [L.fld_m32fp, undefined, L.fst_m32fp, L.fstp_m32fp, X.fldenv, X.fldcw, X.fnstenv, X.fnstcw];
const D9_E0: Row = [A.fchs, A.fabs, undefined, undefined, C.ftst, C.fxam, undefined, undefined];
const D9_E8: Row = [...L.fldConsts, undefined];
const D9_F0: Row = [T.f2xm1, T.fyl2x, T.fptan, T.fpatan, A.fxtract, A.fprem1, X.fdecstp, X.fincstp];
const D9_F8: Row = [A.fprem, T.fyl2xp1, A.fsqrt, T.fsincos, A.frndint, A.fscale, T.fsin, T.fcos];
const DA_MEM: Row = [A.arith_m32int, A.arith_m32int, C.ficom_m32int, C.ficom_m32int, A.arith_m32int, A.arith_m32int, A.arith_m32int, A.arith_m32int];
const DB_MEM: Row = [L.fild_m32int, L.fisttp_m32int, L.fist_m32int, L.fistp_m32int, undefined, L.fld_m80fp, undefined, L.fstp_m80fp];
const DB_E0: Row = [X.fnopControl, X.fnopControl, X.fnclex, X.fninit, X.fnopControl, undefined, undefined, undefined];
const DC_MEM: Row = [A.arith_m64fp, A.arith_m64fp, C.fcom_m64fp, C.fcom_m64fp, A.arith_m64fp, A.arith_m64fp, A.arith_m64fp, A.arith_m64fp];
const DC_REG: Row = [A.arith_sti_st0, A.arith_sti_st0, C.fcom_sti, C.fcomp_sti, A.arith_sti_st0, A.arith_sti_st0, A.arith_sti_st0, A.arith_sti_st0];
const DD_MEM: Row = [L.fld_m64fp, L.fisttp_m64int, L.fst_m64fp, L.fstp_m64fp, X.frstor, undefined, X.fnsave, X.fnstsw_m16];
const DD_REG: Row = [L.ffree, L.fxch, L.fst_sti, L.fstp_sti, C.fucom_sti, C.fucomp_sti, undefined, undefined];
const DE_MEM: Row = [A.arith_m16int, A.arith_m16int, C.ficom_m16int, C.ficom_m16int, A.arith_m16int, A.arith_m16int, A.arith_m16int, A.arith_m16int];
const DF_MEM: Row = [L.fild_m16int, L.fisttp_m16int, L.fist_m16int, L.fistp_m16int, L.fbld, L.fild_m64int, L.fbstp, L.fistp_m64int];
const DF_REG: Row = [L.ffreep, L.fxch, L.fstp_sti, L.fstp_sti, undefined, C.fucomip, C.fcomip, undefined];

const byRm = (d: Insn, row: Row): Handler | undefined => row[d.rm & 7];

const ROWS: ((d: Insn) => Handler | undefined)[] = [
  (d) => (d.mod !== 3 ? D8_MEM : D8_REG)[d.reg & 7],
  (d) => {
    if (d.mod !== 3) return D9_MEM[d.reg & 7];
    switch (d.reg & 7) {
      case 0: return L.fld_sti;
      case 1: return L.fxch;
      case 2: return (d.rm & 7) === 0 ? X.fnop : undefined;
      case 3: return L.fstp1_sti;
      case 4: return byRm(d, D9_E0);
      case 5: return byRm(d, D9_E8);
      case 6: return byRm(d, D9_F0);
      default: return byRm(d, D9_F8);
    }
  },
  (d) => {
    if (d.mod !== 3) return DA_MEM[d.reg & 7];
    const r = d.reg & 7;
    if (r < 4) return L.fcmovs[r];
    return r === 5 && (d.rm & 7) === 1 ? C.fucompp : undefined;
  },
  (d) => {
    if (d.mod !== 3) return DB_MEM[d.reg & 7];
    const r = d.reg & 7;
    if (r < 4) return L.fcmovs[4 + r];
    return r === 4 ? byRm(d, DB_E0) : r === 5 ? C.fucomi : r === 6 ? C.fcomi : undefined;
  },
  (d) => (d.mod !== 3 ? DC_MEM : DC_REG)[d.reg & 7],
  (d) => (d.mod !== 3 ? DD_MEM : DD_REG)[d.reg & 7],
  (d) => {
    if (d.mod !== 3) return DE_MEM[d.reg & 7];
    const r = d.reg & 7;
    if (r === 2) return C.fcomp_sti;
    if (r === 3) return (d.rm & 7) === 1 ? C.fcompp : undefined;
    return A.arithp_sti_st0;
  },
  (d) => {
    if (d.mod !== 3) return DF_MEM[d.reg & 7];
    if ((d.reg & 7) === 4) return (d.rm & 7) === 0 ? X.fnstsw_ax : undefined;
    return DF_REG[d.reg & 7];
  },
];

for (let i = 0; i < 8; i++) def(0, 0xd8 + i, { modrm: true, sel: ROWS[i], cycles: 3 });
def(0, 0x9b, { h: X.fwait });
