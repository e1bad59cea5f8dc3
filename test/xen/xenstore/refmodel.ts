// A small reference xenstored for the property tests, written from docs/misc/xenstore.txt,
// io/xs_wire.h and the xenstored rules the model's header lists. Plain strings and maps, no
// generation arithmetic beyond "a version per global write", no wire codec.

export type Err = 'EINVAL' | 'EACCES' | 'EEXIST' | 'ENOENT' | 'ENOMEM' | 'ENOSPC' | 'EBUSY' | 'EAGAIN' | 'E2BIG' | 'EPERM';
class RefErr { constructor(readonly e: Err) {} }
const no = (e: Err): never => { throw new RefErr(e); };

interface P { id: number; p: number; ign: boolean }
interface N { data: string; perms: P[]; kids: string[]; ver: number }
interface Acc { orig: N | null; cur: N | null; mod: boolean; fire: 0 | 1 | 2 }
interface Tx { acc: Map<string, Acc>; created: boolean; fail: boolean }
interface W { path: string; token: string; cut: number }
export interface RConn { domid: number; watches: W[]; txs: Map<number, Tx>; next: number; out: Out[] }
export type Out = { reply: string } | { err: Err } | { event: [string, string] };

export interface RefQuotas { nodes: number; entrySize: number; watches: number; transactions: number; transactionNodes: number; perms: number; pathMax: number }

const R = 1, Wr = 2, OWN = 4;
const parent = (p: string): string => { const i = p.lastIndexOf('/'); return i > 0 ? p.slice(0, i) : '/'; };
const base = (p: string): string => p.slice(p.lastIndexOf('/') + 1);
const join = (a: string, b: string): string => (a === '/' ? `/${b}` : `${a}/${b}`);
const under = (c: string, w: string): boolean => w === '/' || c === w || c.startsWith(`${w}/`);
const size = (n: { data: string; perms: P[]; kids: string[] }): number => 16 + 8 * n.perms.length + n.data.length + n.kids.reduce((s, k) => s + k.length + 1, 0);
const pstr = (p: P): string => `${'nrwb'[p.p]}${p.id}${p.ign ? '!' : ''}`;

export class RefStore {
  nodes = new Map<string, N>();
  ver = 0;
  conns = new Map<number, RConn>();
  constructor(readonly q: RefQuotas, readonly exists: (d: number) => boolean) {
    const n0 = (kids: string[]): N => ({ data: '', perms: [{ id: 0, p: 0, ign: false }], kids, ver: ++this.ver });
    this.nodes.set('/', n0(['tool']));
    this.nodes.set('/tool', n0(['xenstored']));
    this.nodes.set('/tool/xenstored', n0([]));
    this.nodes.set('@releaseDomain', n0([]));
    this.nodes.set('@introduceDomain', n0([]));
  }

  addConn(domid: number): RConn {
    const c: RConn = { domid, watches: [], txs: new Map(), next: 1, out: [] };
    this.conns.set(domid, c);
    return c;
  }

  dump(): Record<string, { data: string; perms: string[]; children: string[] }> {
    const o: Record<string, { data: string; perms: string[]; children: string[] }> = {};
    for (const k of [...this.nodes.keys()].sort()) {
      const n = this.nodes.get(k)!;
      o[k] = { data: n.data, perms: n.perms.map(pstr), children: [...n.kids] };
    }
    return o;
  }

  // ------------------------------------------------------------------ helpers

  private access(c: RConn, tx: Tx | null, path: string): N | null {
    if (!tx) return this.nodes.get(path) ?? null;
    const a = tx.acc.get(path);
    if (a) return a.cur;
    if (c.domid !== 0 && tx.acc.size >= this.q.transactionNodes) { tx.fail = true; no('ENOSPC'); }
    const g = this.nodes.get(path) ?? null;
    tx.acc.set(path, { orig: g, cur: g, mod: false, fire: 0 });
    return g;
  }

  private put(tx: Tx | null, path: string, n: N | null): void {
    if (!tx) { if (n) this.nodes.set(path, { ...n, ver: ++this.ver }); else this.nodes.delete(path); return; }
    const a = tx.acc.get(path)!;
    a.cur = n;
    a.mod = true;
  }

  private perm(c: { domid: number }, target: number | null, perms: P[]): number {
    if (c.domid === 0 || perms[0].id === c.domid || (target !== null && perms[0].id === target)) return R | Wr | OWN;
    const hit = perms.slice(1).find((e) => !e.ign && (e.id === c.domid || e.id === target));
    return hit ? hit.p : perms[0].p;
  }

  private canon(c: RConn, raw: string, special: boolean): string {
    if (!/^[A-Za-z0-9\-/_@]*$/.test(raw)) no('EINVAL');
    if (raw.startsWith('@') && !special) no('EINVAL');
    const name = raw.startsWith('/') || raw.startsWith('@') ? raw : `/local/domain/${c.domid}/${raw}`;
    if (name !== '/' && name.endsWith('/')) no('EINVAL');
    if (name.includes('//')) no('EINVAL');
    const m = /^\/local\/domain\/\d{1,5}\//.exec(name);
    if (c.domid !== 0 && name.length - (m ? m[0].length : 0) > this.q.pathMax) no('EINVAL');
    return name;
  }

  /** The node if the access is allowed, else the answer: ENOENT only where the nearest
   *  existing ancestor allows the access. */
  private get(c: RConn, tx: Tx | null, name: string, need: number): { n: N | null; e: Err | null } {
    const n = this.access(c, tx, name);
    if (n && (this.perm(c, null, n.perms) & need) === need) return { n, e: null };
    let p = name;
    let up: N | null = null;
    do { p = parent(p); up = this.access(c, tx, p); } while (!up && p !== '/');
    const allowed = up ? this.perm(c, null, up.perms) & need : 0;
    return { n: null, e: allowed ? (n ? 'EACCES' : 'ENOENT') : 'EACCES' };
  }

  private must(c: RConn, tx: Tx | null, name: string, need: number): N {
    const r = this.get(c, tx, name, need);
    if (!r.n) no(r.e!);
    return r.n!;
  }

  private owned(tx: Tx | null, domid: number): number {
    let k = 0;
    for (const n of this.nodes.values()) if (n.perms[0].id === domid) k++;
    if (tx) for (const a of tx.acc.values()) {
      if (!a.mod) continue;
      if (a.orig?.perms[0].id === domid) k--;
      if (a.cur?.perms[0].id === domid) k++;
    }
    return k;
  }

  private fire(c: RConn, tx: Tx | null, name: string, exact: boolean, node?: N | null, up?: N | null, old?: P[] | null): void {
    if (tx) {
      const a = tx.acc.get(name)!;
      if (!a.fire) a.fire = exact ? 1 : 2; else if (!exact) a.fire = 2;
      return;
    }
    this.fireNow(name, exact, node, up, old ?? null);
  }

  private fireNow(name: string, exact: boolean, node: N | null | undefined, up: N | null | undefined, old: P[] | null): void {
    for (const c of this.conns.values()) {
      const n = node === undefined ? this.nodes.get(name) ?? null : node;
      const pn = up === undefined ? this.nodes.get(parent(name)) ?? null : up;
      const ok = (old && this.perm(c, null, old) & R) || (n && this.perm(c, null, n.perms) & R) || (n && pn && this.perm(c, null, pn.perms) & R);
      if (!ok) continue;
      for (const w of c.watches) if (exact ? w.path === name : under(name, w.path)) c.out.push({ event: [name.slice(w.cut), w.token] });
    }
  }

  private sizeOk(c: RConn, n: { data: string; perms: P[]; kids: string[] }): void {
    if (c.domid !== 0 && size(n) > this.q.entrySize) no('ENOSPC');
  }

  private create(c: RConn, tx: Tx | null, name: string, data: string): void {
    const chain = [name];
    let pn = parent(name);
    let top = this.access(c, tx, pn);
    while (!top) {
      if (pn === '/') no('ENOENT');
      chain.push(pn);
      pn = parent(pn);
      top = this.access(c, tx, pn);
    }
    if (c.domid !== 0 && this.owned(tx, c.domid) + chain.length > this.q.nodes) no('ENOSPC');
    const writes: [string, N][] = [];
    let up: N = { ...top, kids: [...top.kids, base(chain[chain.length - 1])] };
    this.sizeOk(c, up);
    writes.push([pn, up]);
    for (let i = chain.length - 1; i >= 0; i--) {
      const perms = up.perms.map((p) => ({ ...p }));
      if (c.domid !== 0) perms[0] = { id: c.domid, p: perms[0].p, ign: false };
      const n: N = { data: i === 0 ? data : '', perms, kids: i === 0 ? [] : [base(chain[i - 1])], ver: 0 };
      this.sizeOk(c, n);
      writes.push([chain[i], n]);
      up = n;
    }
    for (const [p, n] of writes) this.put(tx, p, n);
    if (tx) tx.created = true;
  }

  // ------------------------------------------------------------------ operations

  /** Run one request; its reply and any events land in the connections' `out`. */
  run(domid: number, txId: number, op: string, args: string[]): void {
    const c = this.conns.get(domid)!;
    const notid = op === 'WATCH' || op === 'UNWATCH';
    let after: (() => void) | null = null;
    try {
      let tx: Tx | null = null;
      if (!notid && txId !== 0) tx = c.txs.get(txId) ?? no('ENOENT');
      const reply = this.op(c, tx, txId, op, args, (f) => { after = f; });
      c.out.push({ reply });
      if (after) (after as () => void)();
    } catch (e) {
      if (!(e instanceof RefErr)) throw e;
      c.out.push({ err: e.e });
    }
  }

  private op(c: RConn, tx: Tx | null, txId: number, op: string, a: string[], later: (f: () => void) => void): string {
    switch (op) {
      case 'READ': return this.must(c, tx, this.canon(c, a[0], false), R).data;
      case 'DIRECTORY': return this.must(c, tx, this.canon(c, a[0], false), R).kids.map((k) => `${k}\0`).join('');
      case 'DIRECTORY_PART': {
        const kids = this.must(c, tx, this.canon(c, a[0], false), R).kids.map((k) => `${k}\0`).join('');
        const off = Number(a[1]);
        return off >= kids.length ? '\0' : `${kids.slice(off)}\0`; // (generation prefix stripped by the test)
      }
      case 'GET_PERMS': return this.must(c, tx, this.canon(c, a[0], true), R).perms.map((p) => `${'nrwb'[p.p]}${p.id}\0`).join('');
      case 'WRITE': {
        const name = this.canon(c, a[0], false);
        const r = this.get(c, tx, name, Wr);
        if (r.n) {
          const n = { ...r.n, data: a[1] };
          this.sizeOk(c, n);
          this.put(tx, name, n);
        } else {
          if (r.e !== 'ENOENT') no(r.e!);
          this.create(c, tx, name, a[1]);
        }
        this.fire(c, tx, name, false);
        return 'OK\0';
      }
      case 'MKDIR': {
        const name = this.canon(c, a[0], false);
        const r = this.get(c, tx, name, Wr);
        if (!r.n) {
          if (r.e !== 'ENOENT') no(r.e!);
          this.create(c, tx, name, '');
          this.fire(c, tx, name, false);
        }
        return 'OK\0';
      }
      case 'RM': {
        const name = this.canon(c, a[0], false);
        const r = this.get(c, tx, name, Wr);
        if (!r.n) {
          if (r.e === 'ENOENT' && this.access(c, tx, parent(name))) return 'OK\0';
          no(r.e!);
        }
        if (name === '/') no('EINVAL');
        const up = this.access(c, tx, parent(name))!;
        const gone: [string, N, N][] = [];
        const walk = (p: string, n: N, pn: N): void => {
          for (const k of n.kids) { const x = this.access(c, tx, join(p, k)); if (x) walk(join(p, k), x, n); }
          gone.push([p, n, pn]);
        };
        walk(name, r.n!, up);
        for (const [p] of gone) this.put(tx, p, null);
        this.put(tx, parent(name), { ...up, kids: up.kids.filter((k) => k !== base(name)) });
        for (const [p, n, pn] of gone) this.fire(c, tx, p, p !== name, n, pn);
        return 'OK\0';
      }
      case 'SET_PERMS': {
        const ps = a.slice(1);
        if (ps.length === 0) no('EINVAL');
        if (c.domid !== 0 && ps.length > this.q.perms) no('ENOSPC');
        const perms: P[] = ps.map((s) => {
          const m = /^([nrwb])(\d{1,5})$/.exec(s);
          if (!m || Number(m[2]) > 0xffff) return no('EINVAL');
          const id = Number(m[2]);
          return { id, p: 'nrwb'.indexOf(m[1]), ign: !this.exists(id) };
        });
        if (perms[0].ign) no('ENOENT');
        const name = this.canon(c, a[0], true);
        const n = this.must(c, tx, name, Wr | OWN);
        if (c.domid !== 0 && perms[0].id !== n.perms[0].id) no('EPERM');
        const nn = { ...n, perms };
        this.sizeOk(c, nn);
        this.put(tx, name, nn);
        this.fire(c, tx, name, false, undefined, undefined, n.perms);
        return 'OK\0';
      }
      case 'WATCH': {
        if (a.length !== 2) no('EINVAL');
        const rel = !a[0].startsWith('/') && !a[0].startsWith('@');
        const name = this.canon(c, a[0], true);
        if (c.watches.some((w) => w.path === name && w.token === a[1])) no('EEXIST');
        if (c.domid !== 0 && c.watches.length >= this.q.watches) no('E2BIG');
        const w: W = { path: name, token: a[1], cut: rel ? `/local/domain/${c.domid}/`.length : 0 };
        c.watches.push(w);
        later(() => c.out.push({ event: [name.slice(w.cut), w.token] }));
        return 'OK\0';
      }
      case 'UNWATCH': {
        if (a.length !== 2) no('EINVAL');
        const name = this.canon(c, a[0], true);
        const i = c.watches.findIndex((w) => w.path === name && w.token === a[1]);
        if (i < 0) no('ENOENT');
        c.watches.splice(i, 1);
        return 'OK\0';
      }
      case 'TRANSACTION_START': {
        if (tx) no('EBUSY');
        if (c.domid !== 0 && c.txs.size >= this.q.transactions) no('ENOSPC');
        let id = c.next;
        while (id === 0 || c.txs.has(id)) id++;
        c.next = id + 1;
        c.txs.set(id, { acc: new Map(), created: false, fail: false });
        return `${id}\0`;
      }
      case 'TRANSACTION_END': {
        if (a[0] !== 'T' && a[0] !== 'F') no('EINVAL');
        if (!tx) no('ENOENT');
        c.txs.delete(txId);
        if (a[0] === 'F') return 'OK\0';
        if (tx!.fail) no('ENOMEM');
        if (tx!.created && c.domid !== 0 && this.owned(tx, c.domid) > this.q.nodes) no('ENOSPC');
        for (const [p, x] of tx!.acc) if ((this.nodes.get(p) ?? null) !== x.orig) no('EAGAIN');
        for (const [p, x] of tx!.acc) if (x.mod) this.put(null, p, x.cur);
        for (const [p, x] of tx!.acc) if (x.fire) this.fireNow(p, x.fire === 1, undefined, undefined, x.orig ? x.orig.perms : null);
        return 'OK\0';
      }
      case 'RESET_WATCHES': c.watches = []; c.txs.clear(); return 'OK\0';
      case 'GET_DOMAIN_PATH': return `/local/domain/${Number(a[0])}\0`;
      default: throw new Error(`ref: no op ${op}`);
    }
  }
}
