import { FsError } from '../fs/types.js';

import { E, FDFLAGS, FILETYPE, R, RIFLAGS, SDFLAGS } from './constants.js';
import type { SocketDescriptor } from './fd-table.js';
import type { SyscallHost as WasiHost, Syscalls } from './syscalls.js';

function socket(h: WasiHost, fd: number, right: bigint): SocketDescriptor {
  const d = h.state.fds.get(fd);
  if (d.kind !== 'socket') throw new FsError(E.NOTSOCK);
  if ((d.rightsBase & right) !== right) throw new FsError(E.BADF);
  return d;
}

/**
 * sockCalls implements `sock_*` on sockets the host granted (preview 1 cannot create or connect
 * sockets itself). A descriptor that is not a socket gets ENOTSOCK, an unknown number EBADF.
 */
export const sockCalls: Syscalls = {
  sock_accept: (h: WasiHost, fd: number, flags: number, out: number) => {
    const d = socket(h, fd, R.SOCK_ACCEPT);
    if (flags & ~FDFLAGS.NONBLOCK) return E.INVAL;
    if (!d.socket.accept) return E.INVAL;
    h.memory.check(out >>> 0, 4);
    const conn = d.socket.accept();
    if (!conn) return E.AGAIN;
    const nfd = h.state.fds.add({
      kind: 'socket', socket: conn, filetype: FILETYPE.SOCKET_STREAM, fdflags: flags,
      rightsBase: d.rightsInheriting & ~R.SOCK_ACCEPT, rightsInheriting: 0n,
    });
    h.memory.u32(out, nfd);
    return E.SUCCESS;
  },
  sock_recv: (h: WasiHost, fd: number, iovs: number, n: number, flags: number, lenOut: number, flagsOut: number) => {
    const d = socket(h, fd, R.FD_READ);
    if (flags & ~(RIFLAGS.PEEK | RIFLAGS.WAITALL)) return E.INVAL;
    if (!d.socket.recv) return E.NOTCONN;
    const list = h.memory.iovecs(iovs, n);
    h.memory.check(lenOut >>> 0, 4);
    h.memory.check(flagsOut >>> 0, 2);
    let total = 0;
    for (const iov of list) {
      if (iov.length === 0) continue;
      const got = d.socket.recv(iov, (flags & RIFLAGS.PEEK) !== 0);
      if (got < 0) {
        if (total === 0) return E.AGAIN;
        break;
      }
      total += got;
      if (got < iov.length || flags & RIFLAGS.PEEK) break;
    }
    h.memory.u32(lenOut, total);
    h.memory.dv.setUint16(flagsOut >>> 0, 0, true);
    return E.SUCCESS;
  },
  sock_send: (h: WasiHost, fd: number, iovs: number, n: number, flags: number, out: number) => {
    const d = socket(h, fd, R.FD_WRITE);
    if (flags !== 0) return E.INVAL;
    if (!d.socket.send) return E.NOTCONN;
    const list = h.memory.iovecs(iovs, n);
    let total = 0;
    for (const iov of list) total += d.socket.send(iov);
    h.memory.u32(out, total);
    return E.SUCCESS;
  },
  sock_shutdown: (h: WasiHost, fd: number, how: number) => {
    const d = socket(h, fd, R.SOCK_SHUTDOWN);
    if (how < 1 || how > (SDFLAGS.RD | SDFLAGS.WR)) return E.INVAL;
    if (!d.socket.recv && !d.socket.send) return E.NOTCONN;
    d.socket.shutdown((how & SDFLAGS.RD) !== 0, (how & SDFLAGS.WR) !== 0);
    return E.SUCCESS;
  },
};
