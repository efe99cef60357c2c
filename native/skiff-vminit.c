/*
 * skiff-vminit: the first process of a Skiff micro-VM (the qemu runtime class), and on the host a
 * launcher that ties QEMU's life to Skiff's.
 *
 * Guest mode (PID 1, started by the kernel as rdinit=/.skiff/init): mounts /proc, /sys and /dev,
 * loads the virtio network modules shipped in /.skiff/modules, configures lo and eth0 for QEMU's
 * user-mode network, reads the workload from /.skiff/config, runs it with its output on the
 * console, listens on a control port for a stop request from the host, and powers the machine off
 * when the workload ends. Every line meant for the host starts with "skiff-vminit: TOKEN ", where
 * TOKEN is a per-boot value from the config, so the host can tell them from workload output.
 *
 * Host mode (`skiff-vminit --pdeathsig PPID [--user UID:GID[:GID...]] PROGRAM ARGS...`): drops to
 * the given user, sets no_new_privs, asks the kernel to SIGKILL this process when its parent dies,
 * then execs PROGRAM (QEMU). The death signal survives exec (but not a later uid change, which is
 * why the drop happens here and not through QEMU's -runas), so QEMU dies with Skiff even when
 * Skiff itself is SIGKILLed and cannot clean up.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <grp.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define CONFIG_PATH "/.skiff/config"
#define MODULES_DIR "/.skiff/modules"
#define CONFIG_MAGIC "skiff-vminit-config-v1"
#define MAX_ITEMS 4096
#define GUEST_ADDR "10.0.2.15"
#define GUEST_MASK "255.255.255.0"
#define GUEST_GATEWAY "10.0.2.2"
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE 4
#endif

struct workload {
  char *token;
  char *cwd;
  char *user;
  int port;
  int control_port;
  char *argv[MAX_ITEMS + 1];
  int argc;
  char *envp[MAX_ITEMS + 1];
  int envc;
};

static void say(const char *token, const char *fmt, ...) {
  char buf[1024];
  int n = snprintf(buf, sizeof buf, "skiff-vminit: %s ", token ? token : "-");
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(buf + n, sizeof buf - n - 1, fmt, ap);
  va_end(ap);
  n += m < 0 ? 0 : (m > (int)(sizeof buf - n - 2) ? (int)(sizeof buf - n - 2) : m);
  buf[n++] = '\n';
  if (write(2, buf, n) < 0) {
    /* the console is gone: nothing else can report it */
  }
}

/* halt powers the machine off; with -no-reboot QEMU exits on either path. PID 1 must never return. */
static void halt(void) {
  sync();
  reboot(RB_POWER_OFF);
  reboot(RB_AUTOBOOT);
  for (;;) pause();
}

static void fail(const char *token, const char *what) {
  say(token, "failed %s: %s", what, strerror(errno));
  halt();
}

/* parse_user reads UID:GID[:GID...] (the supplementary groups last). */
static int parse_user(const char *spec, uid_t *uid, gid_t *gid, gid_t *groups, int *ngroups) {
  char *end;
  *uid = (uid_t)strtoul(spec, &end, 10);
  if (*end != ':') return -1;
  *gid = (gid_t)strtoul(end + 1, &end, 10);
  *ngroups = 0;
  while (*end == ':' && *ngroups < 16) groups[(*ngroups)++] = (gid_t)strtoul(end + 1, &end, 10);
  return *end ? -1 : 0;
}

static int host_mode(int argc, char **argv) {
  int i = 3;
  const char *user = NULL;
  if (argc > 4 && !strcmp(argv[3], "--user")) {
    user = argv[4];
    i = 5;
  }
  if (argc <= i) {
    fprintf(stderr, "usage: skiff-vminit --pdeathsig PPID [--user UID:GID[:GID...]] PROGRAM [ARGS...]\n");
    return 2;
  }
  pid_t parent = (pid_t)atoi(argv[2]);
  if (user) {
    uid_t uid;
    gid_t gid, groups[16];
    int ngroups;
    if (parse_user(user, &uid, &gid, groups, &ngroups) != 0) {
      fprintf(stderr, "skiff-vminit: bad --user %s\n", user);
      return 2;
    }
    if (setgroups(ngroups, groups) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
      perror("skiff-vminit: dropping to the --user");
      return 127;
    }
    if (setuid(0) == 0) {
      fprintf(stderr, "skiff-vminit: could regain root after dropping it\n");
      return 127;
    }
  }
  /* After the credential change, which would clear it; exec of a non-setuid program keeps it. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    perror("skiff-vminit: prctl");
    return 127;
  }
  /* The parent may have died between fork and prctl; then nobody would ever kill us. */
  if (getppid() != parent) return 127;
  execvp(argv[i], argv + i);
  fprintf(stderr, "skiff-vminit: exec %s: %s\n", argv[i], strerror(errno));
  return 127;
}

static void mount_basics(void) {
  mkdir("/proc", 0555);
  mkdir("/sys", 0555);
  mkdir("/dev", 0755);
  mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  mkdir("/dev/pts", 0755);
  mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "mode=0620,ptmxmode=0666");
  mkdir("/dev/shm", 01777);
  mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  int fd = open("/dev/console", O_RDWR | O_NOCTTY);
  if (fd >= 0) {
    dup2(fd, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    if (fd > 2) close(fd);
  }
}

/* read_config parses NUL-terminated strings: the magic, then KEY VALUE pairs. */
static int read_config(struct workload *w) {
  int fd = open(CONFIG_PATH, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size <= 0 || st.st_size > (16 << 20)) {
    close(fd);
    errno = EINVAL;
    return -1;
  }
  char *buf = malloc(st.st_size + 1);
  if (!buf) return -1;
  off_t got = 0;
  while (got < st.st_size) {
    ssize_t n = read(fd, buf + got, st.st_size - got);
    if (n <= 0) {
      close(fd);
      errno = EIO;
      return -1;
    }
    got += n;
  }
  close(fd);
  /* The workload may run as root in the guest; it need not find the token lying around. */
  unlink(CONFIG_PATH);
  buf[st.st_size] = 0;
  char *p = buf, *end = buf + st.st_size;
  if (strcmp(p, CONFIG_MAGIC) != 0) {
    errno = EINVAL;
    return -1;
  }
  p += strlen(p) + 1;
  while (p < end) {
    char *key = p;
    p += strlen(p) + 1;
    if (p >= end) break;
    char *val = p;
    p += strlen(p) + 1;
    if (!strcmp(key, "token")) w->token = val;
    else if (!strcmp(key, "cwd")) w->cwd = val;
    else if (!strcmp(key, "user")) w->user = val;
    else if (!strcmp(key, "port")) w->port = atoi(val);
    else if (!strcmp(key, "control-port")) w->control_port = atoi(val);
    else if (!strcmp(key, "arg") && w->argc < MAX_ITEMS) w->argv[w->argc++] = val;
    else if (!strcmp(key, "env") && w->envc < MAX_ITEMS) w->envp[w->envc++] = val;
  }
  w->argv[w->argc] = NULL;
  w->envp[w->envc] = NULL;
  if (!w->token || w->argc == 0 || w->control_port <= 0) {
    errno = EINVAL;
    return -1;
  }
  return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b) {
  return strcmp((*a)->d_name, (*b)->d_name);
}

/* load_modules loads /.skiff/modules/NN-name.ko* in name order (the host wrote them dependencies first). */
static void load_modules(const char *token) {
  struct dirent **names;
  int n = scandir(MODULES_DIR, &names, NULL, by_name);
  if (n < 0) return;
  for (int i = 0; i < n; i++) {
    const char *name = names[i]->d_name;
    if (name[0] == '.') continue;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", MODULES_DIR, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(token, path);
    int flags = (strstr(name, ".ko.xz") || strstr(name, ".ko.zst") || strstr(name, ".ko.gz")) ? MODULE_INIT_COMPRESSED_FILE : 0;
    if (syscall(SYS_finit_module, fd, "", flags) != 0 && errno != EEXIST) fail(token, path);
    close(fd);
  }
}

static void set_addr(const char *token, int s, struct ifreq *ifr, unsigned long req, const char *addr) {
  struct sockaddr_in *sin = (struct sockaddr_in *)&ifr->ifr_addr;
  memset(sin, 0, sizeof *sin);
  sin->sin_family = AF_INET;
  inet_pton(AF_INET, addr, &sin->sin_addr);
  if (ioctl(s, req, ifr) != 0) fail(token, "eth0 address");
}

static void link_up(const char *token, int s, const char *name) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) fail(token, name);
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) fail(token, name);
}

/* configure_network gives eth0 the address QEMU's user network forwards to; lo gets 127.0.0.1 on up. */
static void configure_network(const char *token) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) fail(token, "socket");
  link_up(token, s, "lo");
  /* The virtio device probes when its driver registers, but allow for a late probe. */
  for (int i = 0; i < 200 && if_nametoindex("eth0") == 0; i++) usleep(10000);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, "eth0", IFNAMSIZ - 1);
  set_addr(token, s, &ifr, SIOCSIFADDR, GUEST_ADDR);
  set_addr(token, s, &ifr, SIOCSIFNETMASK, GUEST_MASK);
  link_up(token, s, "eth0");
  /* A default route, so that anything the guest tries is refused by QEMU's restrict=on, not by a missing route. */
  struct rtentry rt;
  memset(&rt, 0, sizeof rt);
  struct sockaddr_in *dst = (struct sockaddr_in *)&rt.rt_dst, *gw = (struct sockaddr_in *)&rt.rt_gateway, *mask = (struct sockaddr_in *)&rt.rt_genmask;
  dst->sin_family = gw->sin_family = mask->sin_family = AF_INET;
  inet_pton(AF_INET, GUEST_GATEWAY, &gw->sin_addr);
  rt.rt_flags = RTF_UP | RTF_GATEWAY;
  if (ioctl(s, SIOCADDRT, &rt) != 0 && errno != EEXIST) fail(token, "default route");
  close(s);
}

static int listen_control(const char *token, int port) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s < 0) fail(token, "control socket");
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, GUEST_ADDR, &a.sin_addr);
  if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 4) != 0) fail(token, "control port");
  return s;
}

static const char *env_path(char **envp) {
  for (char **e = envp; *e; e++)
    if (!strncmp(*e, "PATH=", 5)) return *e + 5;
  return DEFAULT_PATH;
}

/* run_workload is the child: its own session, cwd and environment, console output, no stdin. */
static void run_workload(struct workload *w, const sigset_t *old) {
  sigprocmask(SIG_SETMASK, old, NULL);
  setsid();
  int null = open("/dev/null", O_RDONLY);
  if (null >= 0) dup2(null, 0);
  if (w->user) {
    /* The image's config.User: no supplementary groups, then the group, then the user, for good. */
    uid_t uid;
    gid_t gid, groups[16];
    int ngroups;
    if (parse_user(w->user, &uid, &gid, groups, &ngroups) != 0 || setgroups((size_t)ngroups, groups) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
      fprintf(stderr, "skiff-vminit: running as user %s: %s\n", w->user, strerror(errno));
      _exit(127);
    }
  }
  if (chdir(w->cwd && *w->cwd ? w->cwd : "/") != 0) {
    fprintf(stderr, "skiff-vminit: working directory %s: %s\n", w->cwd, strerror(errno));
    _exit(127);
  }
  const char *file = w->argv[0];
  if (strchr(file, '/')) {
    execve(file, w->argv, w->envp);
  } else {
    const char *path = env_path(w->envp);
    char full[4096];
    int err = ENOENT;
    while (*path) {
      const char *colon = strchr(path, ':');
      size_t len = colon ? (size_t)(colon - path) : strlen(path);
      snprintf(full, sizeof full, "%.*s/%s", (int)len, len ? path : ".", file);
      execve(full, w->argv, w->envp);
      if (errno != ENOENT) err = errno;
      path += len + (colon ? 1 : 0);
      if (!colon) break;
    }
    errno = err;
  }
  fprintf(stderr, "skiff-vminit: exec %s: %s\n", file, strerror(errno));
  _exit(127);
}

/* serve_control answers one host request: TERM asks the workload to stop, KILL ends everything. */
static void serve_control(int lfd, pid_t child) {
  int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  if (c < 0) return;
  struct timeval tv = {.tv_sec = 1, .tv_usec = 0};
  setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[16] = {0};
  ssize_t n = read(c, buf, sizeof buf - 1);
  if (n >= 4 && !strncmp(buf, "TERM", 4)) {
    kill(-child, SIGTERM);
    kill(child, SIGTERM);
    (void)!write(c, "OK\n", 3);
  } else if (n >= 4 && !strncmp(buf, "KILL", 4)) {
    kill(-1, SIGKILL);
    (void)!write(c, "OK\n", 3);
  }
  close(c);
}

static int guest_mode(void) {
  static struct workload w;
  mount_basics();
  if (read_config(&w) != 0) fail(NULL, "reading " CONFIG_PATH);
  load_modules(w.token);
  configure_network(w.token);
  int lfd = listen_control(w.token, w.control_port);

  sigset_t chld, old;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, &old);
  int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) fail(w.token, "signalfd");

  pid_t child = fork();
  if (child < 0) fail(w.token, "fork");
  if (child == 0) run_workload(&w, &old);
  /* The guest's uptime lets the host split a cold start into firmware/decompression and kernel boot. */
  char up[32] = "?";
  int ufd = open("/proc/uptime", O_RDONLY | O_CLOEXEC);
  if (ufd >= 0) {
    ssize_t n = read(ufd, up, sizeof up - 1);
    up[n > 0 ? n : 0] = 0;
    up[strcspn(up, " \n")] = 0;
    close(ufd);
  }
  say(w.token, "started %d %s", (int)child, up);

  int status = 0;
  for (;;) {
    struct pollfd fds[2] = {{.fd = sfd, .events = POLLIN}, {.fd = lfd, .events = POLLIN}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) fail(w.token, "poll");
    if (fds[1].revents & POLLIN) serve_control(lfd, child);
    if (!(fds[0].revents & POLLIN)) continue;
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof si) > 0) {
    }
    int st;
    pid_t p;
    int done = 0;
    /* PID 1 adopts every orphan: reap them all, and stop when the workload itself has ended. */
    while ((p = waitpid(-1, &st, WNOHANG)) > 0)
      if (p == child) {
        status = st;
        done = 1;
      }
    if (done) break;
  }
  kill(-1, SIGKILL);
  if (WIFSIGNALED(status)) say(w.token, "signal %d", WTERMSIG(status));
  else say(w.token, "exit %d", WEXITSTATUS(status));
  halt();
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "--pdeathsig")) return host_mode(argc, argv);
  if (getpid() != 1) {
    fprintf(stderr, "skiff-vminit: runs as PID 1 of a Skiff micro-VM, or as: skiff-vminit --pdeathsig PPID [--user UID:GID[:GID...]] PROGRAM [ARGS...]\n");
    return 2;
  }
  return guest_mode();
}
