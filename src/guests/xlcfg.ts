// xl.cfg files, as `xl create` reads them: `key = value` lines where a value is a quoted
// string, a number or a [list, ...]; `#` starts a comment. Unknown keys are kept (and
// reported) so a config written for real Xen still loads.

export class XlConfigError extends Error {}

export type XlValue = string | number | XlValue[];

export interface XlConfig {
  name: string;
  type: 'pv' | 'pvh' | 'hvm';
  kernel?: string;
  ramdisk?: string;
  memory: number;
  maxmem?: number;
  vcpus: number;
  cmdline: string;
  onPoweroff: XlAction;
  onReboot: XlAction;
  onCrash: XlAction;
  disks: string[];
  vifs: string[];
  /** Every key as parsed. */
  raw: Map<string, XlValue>;
  /** Keys xensim does not act on. */
  ignored: string[];
}

export type XlAction = 'destroy' | 'restart' | 'preserve' | 'rename-restart' | 'coredump-destroy' | 'coredump-restart' | 'soft-reset';
const ACTIONS = new Set<XlAction>(['destroy', 'restart', 'preserve', 'rename-restart', 'coredump-destroy', 'coredump-restart', 'soft-reset']);
const KNOWN = new Set(['name', 'type', 'builder', 'kernel', 'ramdisk', 'memory', 'maxmem', 'vcpus', 'maxvcpus', 'extra', 'cmdline',
  'root', 'on_poweroff', 'on_reboot', 'on_crash', 'disk', 'vif']);

/** Parse the text of an xl.cfg file. `file` names it in error messages. */
export function parseXlConfig(text: string, file = 'config'): XlConfig {
  const raw = new Map<string, XlValue>();
  const p = new Parser(text, file);
  p.skipSpace();
  while (!p.eof()) {
    const line = p.line;
    const key = p.ident();
    p.skipSpace(false);
    p.expect('=');
    p.skipSpace(false);
    const value = p.value();
    p.skipSpace(false);
    if (!p.eof() && !p.at('\n') && !p.at(';')) p.fail(`unexpected '${p.peek()}' after the value of '${key}'`);
    if (p.at(';')) p.next();
    if (raw.has(key)) throw new XlConfigError(`${file}:${line}: '${key}' is set twice`);
    raw.set(key, value);
    p.skipSpace();
  }
  return interpret(raw, file);
}

function str(raw: Map<string, XlValue>, key: string, file: string): string | undefined {
  const v = raw.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new XlConfigError(`${file}: '${key}' must be a quoted string`);
  return v;
}
function num(raw: Map<string, XlValue>, key: string, file: string): number | undefined {
  const v = raw.get(key);
  if (v === undefined) return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < 0) throw new XlConfigError(`${file}: '${key}' must be a non-negative integer, not ${JSON.stringify(v)}`);
  return n;
}
function list(raw: Map<string, XlValue>, key: string, file: string): string[] {
  const v = raw.get(key);
  if (v === undefined) return [];
  const items = Array.isArray(v) ? v : [v];
  return items.map((x) => {
    if (typeof x !== 'string') throw new XlConfigError(`${file}: every entry of '${key}' must be a quoted string`);
    return x;
  });
}
function action(raw: Map<string, XlValue>, key: string, def: XlAction, file: string): XlAction {
  const v = str(raw, key, file);
  if (v === undefined) return def;
  if (!ACTIONS.has(v as XlAction)) throw new XlConfigError(`${file}: '${key}' must be one of ${[...ACTIONS].join(', ')}, not '${v}'`);
  return v as XlAction;
}

function interpret(raw: Map<string, XlValue>, file: string): XlConfig {
  const name = str(raw, 'name', file);
  if (!name) throw new XlConfigError(`${file}: 'name' is required`);
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new XlConfigError(`${file}: name '${name}' may only contain letters, digits, '_', '.' and '-'`);
  const type = (str(raw, 'type', file) ?? (str(raw, 'builder', file) === 'hvm' ? 'hvm' : 'pv')) as XlConfig['type'];
  if (type !== 'pv' && type !== 'pvh' && type !== 'hvm') throw new XlConfigError(`${file}: type '${type}' is not pv, pvh or hvm`);
  const memory = num(raw, 'memory', file) ?? 128;
  if (memory < 1) throw new XlConfigError(`${file}: memory must be at least 1 (MiB)`);
  const vcpus = num(raw, 'vcpus', file) ?? 1;
  if (vcpus < 1 || vcpus > 128) throw new XlConfigError(`${file}: vcpus must be between 1 and 128`);
  // xl: cmdline wins; otherwise "root=<root> <extra>".
  let cmdline = str(raw, 'cmdline', file);
  if (cmdline === undefined) {
    const root = str(raw, 'root', file), extra = str(raw, 'extra', file);
    cmdline = [root !== undefined ? `root=${root}` : '', extra ?? ''].filter(Boolean).join(' ');
  }
  return {
    name, type,
    kernel: str(raw, 'kernel', file), ramdisk: str(raw, 'ramdisk', file),
    memory, maxmem: num(raw, 'maxmem', file), vcpus, cmdline,
    onPoweroff: action(raw, 'on_poweroff', 'destroy', file),
    onReboot: action(raw, 'on_reboot', 'restart', file),
    onCrash: action(raw, 'on_crash', 'destroy', file),
    disks: list(raw, 'disk', file), vifs: list(raw, 'vif', file),
    raw, ignored: [...raw.keys()].filter((k) => !KNOWN.has(k)),
  };
}

class Parser {
  private i = 0;
  line = 1;
  constructor(private readonly s: string, private readonly file: string) {}
  eof(): boolean { return this.i >= this.s.length; }
  peek(): string { return this.s[this.i]; }
  at(c: string): boolean { return this.s[this.i] === c; }
  next(): string { const c = this.s[this.i++]; if (c === '\n') this.line++; return c; }
  fail(msg: string): never { throw new XlConfigError(`${this.file}:${this.line}: ${msg}`); }
  expect(c: string): void { if (!this.at(c)) this.fail(this.eof() ? `expected '${c}' before the end of the file` : `expected '${c}', found '${this.peek()}'`); this.next(); }
  /** Skip blanks and comments; newlines too unless told not to. */
  skipSpace(newlines = true): void {
    while (!this.eof()) {
      const c = this.peek();
      if (c === '#') { while (!this.eof() && !this.at('\n')) this.next(); }
      else if (c === ' ' || c === '\t' || c === '\r' || (newlines && c === '\n')) this.next();
      else break;
    }
  }
  ident(): string {
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.s.slice(this.i));
    if (!m) this.fail(`expected a setting name, found '${this.peek()}'`);
    this.i += m[0].length;
    return m[0];
  }
  value(): XlValue {
    if (this.eof() || this.at('\n')) this.fail('missing value');
    const c = this.peek();
    if (c === '"' || c === "'") return this.string();
    if (c === '[') {
      this.next();
      const items: XlValue[] = [];
      this.skipSpace();
      while (!this.at(']')) {
        if (this.eof()) this.fail("unterminated list (missing ']')");
        items.push(this.value());
        this.skipSpace();
        if (this.at(',')) { this.next(); this.skipSpace(); } else if (!this.at(']')) this.fail(`expected ',' or ']' in a list, found '${this.peek()}'`);
      }
      this.next();
      return items;
    }
    const m = /^(0x[0-9a-fA-F]+|[0-9]+)/.exec(this.s.slice(this.i));
    if (!m) this.fail(`expected a quoted string, a number or a list, found '${c}'`);
    this.i += m[0].length;
    return Number(m[0]);
  }
  string(): string {
    const q = this.next();
    let out = '';
    for (;;) {
      if (this.eof() || this.at('\n')) this.fail('unterminated string');
      const c = this.next();
      if (c === q) return out;
      if (c === '\\') {
        const e = this.next();
        out += e === 'n' ? '\n' : e === 't' ? '\t' : e;
      } else out += c;
    }
  }
}
