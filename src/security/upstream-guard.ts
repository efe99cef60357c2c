import { lookup } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

import { SkiffError } from '../util/errors.js';

/** UpstreamRefusedError: a Service endpoint or URL source names a target the operator has not allowed. */
export class UpstreamRefusedError extends SkiffError {
  constructor(message: string) {
    super('upstream_refused', message);
  }
}

export interface ListenAddress {
  host: string;
  port: number;
}

/** The address ranges refused unless allowed: this machine and its links, not the networks beyond it. */
const REFUSED = (() => {
  const b = new BlockList();
  b.addSubnet('127.0.0.0', 8, 'ipv4'); // loopback
  b.addSubnet('0.0.0.0', 8, 'ipv4'); // "this network", the unspecified address
  b.addSubnet('169.254.0.0', 16, 'ipv4'); // link-local (cloud metadata services live here)
  b.addSubnet('224.0.0.0', 4, 'ipv4'); // multicast
  b.addAddress('255.255.255.255', 'ipv4');
  b.addAddress('::1', 'ipv6');
  b.addAddress('::', 'ipv6');
  b.addSubnet('fe80::', 10, 'ipv6');
  b.addSubnet('ff00::', 8, 'ipv6');
  return b;
})();

/** family returns 'ipv4' or 'ipv6' for an IP literal, unwrapping IPv4-mapped IPv6 (`::ffff:127.0.0.1`). */
function normalise(ip: string): { ip: string; family: 'ipv4' | 'ipv6' } | undefined {
  let a = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  const v = isIP(a);
  if (v === 4) return { ip: a, family: 'ipv4' };
  if (v !== 6) return undefined;
  const mapped = /^(?:0{0,4}:){0,5}(?:0{0,4}:)?ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a) ?? /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (mapped) return { ip: mapped[1]!, family: 'ipv4' };
  const hexMapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(a);
  if (hexMapped) {
    const hi = parseInt(hexMapped[1]!, 16);
    const lo = parseInt(hexMapped[2]!, 16);
    return { ip: `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`, family: 'ipv4' };
  }
  return { ip: a.toLowerCase(), family: 'ipv6' };
}

function isUnspecified(host: string): boolean {
  const n = normalise(host);
  return !!n && (n.ip === '0.0.0.0' || n.ip === '::');
}

/**
 * UpstreamGuard decides which network targets Services and URL module sources may reach. Loopback,
 * link-local, multicast and the unspecified address are refused unless the operator allows them with
 * `skiff up --allow-upstream CIDR|HOST:PORT`; Skiff's own listeners are refused always, whatever is
 * allowed. Names are checked on every address they resolve to, and connections are made to the
 * address that was checked (see `lookup`), so a name cannot change its answer between check and connect.
 */
export class UpstreamGuard {
  private readonly allowedNets = new BlockList();
  private readonly allowedHostPorts = new Set<string>();
  private readonly own: ListenAddress[] = [];
  private readonly everything: boolean;

  private constructor(entries: readonly string[], everything: boolean) {
    this.everything = everything;
    for (const e of entries) this.add(e);
  }

  /** from parses `--allow-upstream` values: `CIDR` (`127.0.0.0/8`, `::1/128`), an IP, or `HOST:PORT` (`localhost:9000`, `[::1]:9000`). */
  static from(entries: readonly string[]): UpstreamGuard {
    return new UpstreamGuard(entries, false);
  }

  /** permissive allows every target except Skiff's own listeners: for in-process tests and tools that proxy to loopback. */
  static permissive(): UpstreamGuard {
    return new UpstreamGuard([], true);
  }

  private add(entry: string): void {
    const e = entry.trim();
    const cidr = /^(.+)\/(\d{1,3})$/.exec(e);
    if (cidr) {
      const n = normalise(cidr[1]!);
      const bits = Number(cidr[2]);
      if (!n || bits > (n.family === 'ipv4' ? 32 : 128)) throw new UpstreamRefusedError(`--allow-upstream ${entry}: not a CIDR range such as 127.0.0.0/8 or ::1/128`);
      this.allowedNets.addSubnet(n.ip, bits, n.family);
      return;
    }
    const hp = /^(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/.exec(e);
    if (hp) {
      const port = Number(hp[2]);
      if (port < 1 || port > 65535) throw new UpstreamRefusedError(`--allow-upstream ${entry}: port out of range`);
      this.allowedHostPorts.add(hostPortKey(hp[1]!, port));
      return;
    }
    const n = normalise(e);
    if (n) {
      this.allowedNets.addAddress(n.ip, n.family);
      return;
    }
    throw new UpstreamRefusedError(`--allow-upstream ${entry}: expected CIDR (10.0.0.0/8), an IP address, or HOST:PORT (localhost:9000)`);
  }

  /** addOwnListener records one of Skiff's own listeners; targets reaching it are refused always. */
  addOwnListener(addr: ListenAddress): void {
    this.own.push({ host: addr.host, port: addr.port });
  }

  /**
   * checkAddress returns why connecting to `ip:port` (reached through the name `host`) is refused, or
   * undefined when it is allowed.
   */
  checkAddress(host: string, ip: string, port: number): string | undefined {
    const n = normalise(ip);
    if (!n) return `${ip} is not an IP address`;
    if (this.isOwnListener(n.ip, n.family, port)) return `${describe(host, ip, port)} is one of Skiff's own listeners (API, gateway or mesh); no route or source may reach them`;
    if (this.everything) return undefined;
    if (this.allowedHostPorts.has(hostPortKey(host, port)) || this.allowedHostPorts.has(hostPortKey(n.ip, port))) return undefined;
    if (this.allowedNets.check(n.ip, n.family)) return undefined;
    if (REFUSED.check(n.ip, n.family)) {
      return `${describe(host, ip, port)} is a loopback, link-local, multicast or unspecified address; start skiff up with --allow-upstream ${n.family === 'ipv6' ? `[${n.ip}]` : n.ip}:${port} (or a CIDR) to allow it`;
    }
    return undefined;
  }

  /** check resolves `host` and refuses it when any address it resolves to is refused; returns the addresses. */
  async check(host: string, port: number): Promise<string[]> {
    const addrs = await resolveAll(host);
    for (const a of addrs) {
      const why = this.checkAddress(host, a.address, port);
      if (why) throw new UpstreamRefusedError(why);
    }
    return addrs.map((a) => a.address);
  }

  /** checkLiteral checks a host that is an IP literal without resolving anything (for admission); names return undefined. */
  checkLiteral(host: string, port: number): string | undefined {
    const h = host.startsWith('[') ? host.slice(1, -1) : host;
    if (h.toLowerCase() === 'localhost' || h.toLowerCase().endsWith('.localhost')) return this.checkAddress(host, '127.0.0.1', port);
    if (!normalise(h)) return undefined;
    return this.checkAddress(host, h, port);
  }

  /**
   * lookup is a `dns.lookup`-compatible function for `net.connect`, `tls.connect` and undici's
   * `connect.lookup`: it resolves, checks every answer, and hands back only checked addresses.
   */
  lookup(port: number): (hostname: string, options: unknown, cb: (err: Error | null, address: string | Array<{ address: string; family: number }>, family?: number) => void) => void {
    return (hostname, options, cb) => {
      const all = typeof options === 'object' && options !== null && (options as { all?: boolean }).all === true;
      this.check(hostname, port).then(
        (addrs) => {
          const list = addrs.map((address) => ({ address, family: isIP(address) }));
          if (all) cb(null, list);
          else cb(null, list[0]!.address, list[0]!.family);
        },
        (err: Error) => cb(err, all ? [] : '', 0),
      );
    };
  }

  private isOwnListener(ip: string, family: 'ipv4' | 'ipv6', port: number): boolean {
    for (const l of this.own) {
      if (l.port !== port) continue;
      if (isUnspecified(l.host)) {
        if (REFUSED.check(ip, family) || localAddresses().has(ip)) return true;
        continue;
      }
      const n = normalise(l.host === 'localhost' ? '127.0.0.1' : l.host);
      if (n && n.ip === ip) return true;
      // The unspecified address reaches every local listener on its port.
      if (ip === '0.0.0.0' || ip === '::') return true;
    }
    return false;
  }
}

function hostPortKey(host: string, port: number): string {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return `${h.toLowerCase()}|${port}`;
}

function describe(host: string, ip: string, port: number): string {
  const h = host.startsWith('[') ? host.slice(1, -1) : host;
  return h === ip ? `${ip.includes(':') ? `[${ip}]` : ip}:${port}` : `${host}:${port} (${ip})`;
}

function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) out.add(normalise(i.address)?.ip ?? i.address);
  return out;
}

function resolveAll(host: string): Promise<Array<{ address: string; family: number }>> {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (isIP(h)) return Promise.resolve([{ address: h, family: isIP(h) }]);
  return new Promise((resolveP, reject) => {
    lookup(h, { all: true }, (err, addrs) => {
      if (err) reject(new UpstreamRefusedError(`cannot resolve ${h}: ${err.code ?? err.message}`));
      else if (!addrs.length) reject(new UpstreamRefusedError(`${h} resolves to no address`));
      else resolveP(addrs);
    });
  });
}
