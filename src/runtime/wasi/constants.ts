/**
 * WASI preview 1 constants and struct layouts, in one place, with the byte offsets the specification
 * (witx `wasi_snapshot_preview1`) gives. Every syscall family reads and writes guest memory through
 * these numbers only.
 */

/** Errno values, exactly as numbered by the specification. */
export const E = {
  SUCCESS: 0, TOOBIG: 1, ACCES: 2, ADDRINUSE: 3, ADDRNOTAVAIL: 4, AFNOSUPPORT: 5, AGAIN: 6, ALREADY: 7,
  BADF: 8, BADMSG: 9, BUSY: 10, CANCELED: 11, CHILD: 12, CONNABORTED: 13, CONNREFUSED: 14, CONNRESET: 15,
  DEADLK: 16, DESTADDRREQ: 17, DOM: 18, DQUOT: 19, EXIST: 20, FAULT: 21, FBIG: 22, HOSTUNREACH: 23,
  IDRM: 24, ILSEQ: 25, INPROGRESS: 26, INTR: 27, INVAL: 28, IO: 29, ISCONN: 30, ISDIR: 31, LOOP: 32,
  MFILE: 33, MLINK: 34, MSGSIZE: 35, MULTIHOP: 36, NAMETOOLONG: 37, NETDOWN: 38, NETRESET: 39,
  NETUNREACH: 40, NFILE: 41, NOBUFS: 42, NODEV: 43, NOENT: 44, NOEXEC: 45, NOLCK: 46, NOLINK: 47,
  NOMEM: 48, NOMSG: 49, NOPROTOOPT: 50, NOSPC: 51, NOSYS: 52, NOTCONN: 53, NOTDIR: 54, NOTEMPTY: 55,
  NOTRECOVERABLE: 56, NOTSOCK: 57, NOTSUP: 58, NOTTY: 59, NXIO: 60, OVERFLOW: 61, OWNERDEAD: 62,
  PERM: 63, PIPE: 64, PROTO: 65, PROTONOSUPPORT: 66, PROTOTYPE: 67, RANGE: 68, ROFS: 69, SPIPE: 70,
  SRCH: 71, STALE: 72, TIMEDOUT: 73, TXTBSY: 74, XDEV: 75, NOTCAPABLE: 76,
} as const;

/** Errno is a WASI error number. */
export type Errno = number;

/** Rights bits (u64, kept as bigint because several are above bit 31). */
export const R = {
  FD_DATASYNC: 1n << 0n, FD_READ: 1n << 1n, FD_SEEK: 1n << 2n, FD_FDSTAT_SET_FLAGS: 1n << 3n,
  FD_SYNC: 1n << 4n, FD_TELL: 1n << 5n, FD_WRITE: 1n << 6n, FD_ADVISE: 1n << 7n, FD_ALLOCATE: 1n << 8n,
  PATH_CREATE_DIRECTORY: 1n << 9n, PATH_CREATE_FILE: 1n << 10n, PATH_LINK_SOURCE: 1n << 11n,
  PATH_LINK_TARGET: 1n << 12n, PATH_OPEN: 1n << 13n, FD_READDIR: 1n << 14n, PATH_READLINK: 1n << 15n,
  PATH_RENAME_SOURCE: 1n << 16n, PATH_RENAME_TARGET: 1n << 17n, PATH_FILESTAT_GET: 1n << 18n,
  PATH_FILESTAT_SET_SIZE: 1n << 19n, PATH_FILESTAT_SET_TIMES: 1n << 20n, FD_FILESTAT_GET: 1n << 21n,
  FD_FILESTAT_SET_SIZE: 1n << 22n, FD_FILESTAT_SET_TIMES: 1n << 23n, PATH_SYMLINK: 1n << 24n,
  PATH_REMOVE_DIRECTORY: 1n << 25n, PATH_UNLINK_FILE: 1n << 26n, POLL_FD_READWRITE: 1n << 27n,
  SOCK_SHUTDOWN: 1n << 28n, SOCK_ACCEPT: 1n << 29n,
} as const;

/** Every right defined by preview 1. */
export const RIGHTS_ALL = (1n << 30n) - 1n;
/** Rights that make sense on a regular file. */
export const RIGHTS_FILE =
  R.FD_DATASYNC | R.FD_READ | R.FD_SEEK | R.FD_FDSTAT_SET_FLAGS | R.FD_SYNC | R.FD_TELL | R.FD_WRITE |
  R.FD_ADVISE | R.FD_ALLOCATE | R.FD_FILESTAT_GET | R.FD_FILESTAT_SET_SIZE | R.FD_FILESTAT_SET_TIMES |
  R.POLL_FD_READWRITE;
/** Rights that make sense on a directory. */
export const RIGHTS_DIR =
  R.FD_FDSTAT_SET_FLAGS | R.FD_SYNC | R.FD_ADVISE | R.PATH_CREATE_DIRECTORY | R.PATH_CREATE_FILE |
  R.PATH_LINK_SOURCE | R.PATH_LINK_TARGET | R.PATH_OPEN | R.FD_READDIR | R.PATH_READLINK |
  R.PATH_RENAME_SOURCE | R.PATH_RENAME_TARGET | R.PATH_FILESTAT_GET | R.PATH_FILESTAT_SET_SIZE |
  R.PATH_FILESTAT_SET_TIMES | R.FD_FILESTAT_GET | R.FD_FILESTAT_SET_TIMES | R.PATH_SYMLINK |
  R.PATH_REMOVE_DIRECTORY | R.PATH_UNLINK_FILE;
/** Rights that mutate the filesystem; a read-only preopen never hands these out. */
export const RIGHTS_MUTATING =
  R.FD_DATASYNC | R.FD_WRITE | R.FD_ALLOCATE | R.FD_FILESTAT_SET_SIZE | R.FD_FILESTAT_SET_TIMES |
  R.PATH_CREATE_DIRECTORY | R.PATH_CREATE_FILE | R.PATH_LINK_SOURCE | R.PATH_LINK_TARGET |
  R.PATH_RENAME_SOURCE | R.PATH_RENAME_TARGET | R.PATH_FILESTAT_SET_SIZE | R.PATH_FILESTAT_SET_TIMES |
  R.PATH_SYMLINK | R.PATH_REMOVE_DIRECTORY | R.PATH_UNLINK_FILE;
/** Rights of stdio streams and sockets. */
export const RIGHTS_STREAM = R.FD_READ | R.FD_WRITE | R.FD_FDSTAT_SET_FLAGS | R.FD_FILESTAT_GET | R.POLL_FD_READWRITE;
export const RIGHTS_SOCKET = RIGHTS_STREAM | R.SOCK_SHUTDOWN | R.SOCK_ACCEPT;

/** File types (u8). */
export const FILETYPE = {
  UNKNOWN: 0, BLOCK_DEVICE: 1, CHARACTER_DEVICE: 2, DIRECTORY: 3, REGULAR_FILE: 4,
  SOCKET_DGRAM: 5, SOCKET_STREAM: 6, SYMBOLIC_LINK: 7,
} as const;

/** fdflags (u16). */
export const FDFLAGS = { APPEND: 1, DSYNC: 2, NONBLOCK: 4, RSYNC: 8, SYNC: 16 } as const;
/** oflags (u16). */
export const OFLAGS = { CREAT: 1, DIRECTORY: 2, EXCL: 4, TRUNC: 8 } as const;
/** lookupflags (u32). */
export const LOOKUP_SYMLINK_FOLLOW = 1;
/** fstflags (u16). */
export const FSTFLAGS = { ATIM: 1, ATIM_NOW: 2, MTIM: 4, MTIM_NOW: 8 } as const;
/** whence (u8). */
export const WHENCE = { SET: 0, CUR: 1, END: 2 } as const;
/** clockid (u32). */
export const CLOCK = { REALTIME: 0, MONOTONIC: 1, PROCESS_CPUTIME: 2, THREAD_CPUTIME: 3 } as const;
/** eventtype (u8). */
export const EVENTTYPE = { CLOCK: 0, FD_READ: 1, FD_WRITE: 2 } as const;
/** subclockflags (u16). */
export const SUBCLOCK_ABSTIME = 1;
/** eventrwflags (u16). */
export const EVENTRW_HANGUP = 1;
/** riflags, roflags, sdflags. */
export const RIFLAGS = { PEEK: 1, WAITALL: 2 } as const;
export const ROFLAGS_DATA_TRUNCATED = 1;
export const SDFLAGS = { RD: 1, WR: 2 } as const;
/** advice (u8): valid values are 0..5. */
export const ADVICE_MAX = 5;
/** preopentype (u8). */
export const PREOPENTYPE_DIR = 0;
/** Highest signal number defined by preview 1 (`sys`). */
export const SIGNAL_MAX = 30;

/** Struct sizes and field offsets (bytes). */
export const IOVEC = { SIZE: 8, BUF: 0, LEN: 4 } as const;
export const FDSTAT = { SIZE: 24, FILETYPE: 0, FLAGS: 2, RIGHTS_BASE: 8, RIGHTS_INHERITING: 16 } as const;
export const FILESTAT = { SIZE: 64, DEV: 0, INO: 8, FILETYPE: 16, NLINK: 24, SIZE_: 32, ATIM: 40, MTIM: 48, CTIM: 56 } as const;
export const DIRENT = { SIZE: 24, NEXT: 0, INO: 8, NAMLEN: 16, TYPE: 20 } as const;
export const PRESTAT = { SIZE: 8, TAG: 0, NAME_LEN: 4 } as const;
export const SUBSCRIPTION = {
  SIZE: 48, USERDATA: 0, TAG: 8,
  CLOCK_ID: 16, CLOCK_TIMEOUT: 24, CLOCK_PRECISION: 32, CLOCK_FLAGS: 40,
  FD: 16,
} as const;
export const EVENT = { SIZE: 32, USERDATA: 0, ERROR: 8, TYPE: 10, NBYTES: 16, FLAGS: 24 } as const;

/** The import module name of preview 1. */
export const WASI_MODULE = 'wasi_snapshot_preview1';

/** Every function preview 1 defines, with its core Wasm signature (params → results). */
export const WASI_FUNCTIONS: Readonly<Record<string, string>> = {
  args_get: 'ii', args_sizes_get: 'ii', environ_get: 'ii', environ_sizes_get: 'ii',
  clock_res_get: 'ii', clock_time_get: 'iIi',
  fd_advise: 'iIIi', fd_allocate: 'iII', fd_close: 'i', fd_datasync: 'i', fd_fdstat_get: 'ii',
  fd_fdstat_set_flags: 'ii', fd_fdstat_set_rights: 'iII', fd_filestat_get: 'ii', fd_filestat_set_size: 'iI',
  fd_filestat_set_times: 'iIIi', fd_pread: 'iiiIi', fd_prestat_get: 'ii', fd_prestat_dir_name: 'iii',
  fd_pwrite: 'iiiIi', fd_read: 'iiii', fd_readdir: 'iiiIi', fd_renumber: 'ii', fd_seek: 'iIii', fd_sync: 'i',
  fd_tell: 'ii', fd_write: 'iiii',
  path_create_directory: 'iii', path_filestat_get: 'iiiii', path_filestat_set_times: 'iiiiIIi',
  path_link: 'iiiiiii', path_open: 'iiiiiIIii', path_readlink: 'iiiiii', path_remove_directory: 'iii',
  path_rename: 'iiiiii', path_symlink: 'iiiii', path_unlink_file: 'iii',
  poll_oneoff: 'iiii', proc_exit: 'i', proc_raise: 'i', sched_yield: '', random_get: 'ii',
  sock_accept: 'iii', sock_recv: 'iiiiii', sock_send: 'iiiii', sock_shutdown: 'ii',
};
