// The I/O port space as the CPU sees it (in/out/ins/outs). Devices implement it above.

export interface PortBus {
  /** Read `size` bytes (1, 2, 4) from a port. Unclaimed ports read as all ones. */
  portIn(port: number, size: number): number;
  portOut(port: number, size: number, value: number): void;
}

export const nullPorts: PortBus = {
  portIn: (_p, size) => (size === 4 ? -1 : (1 << (size * 8)) - 1),
  portOut: () => {},
};
