/*
 * skiff-init: the small static program on both sides of a container replica's sandbox.
 *
 *   skiff-init launch [--listen PATH] [--cgroup FILE]... [--stage DIR] [--bind[-rw] SRC NAME]...
 *                     [--uid N --gid N] -- PROGRAM ARGS...
 *     Host side, started by Skiff (as root when it can). Creates the replica's Unix socket and keeps
 *     it as fd 3, joins the replica's cgroups (so every later process is counted from its first
 *     instruction), shows the read-only sources to the sandbox under a private tmpfs (so no host
 *     directory has to be searchable by the sandbox's uid), drops to the unprivileged uid, arms
 *     PR_SET_PDEATHSIG and execs the sandbox tool (bwrap or runc).
 *
 *   skiff-init [--port N] [--listen-fd N] [--lifeline-fd N] [--rlimit NAME=VALUE]... [--unsetenv NAME]... -- ARGV...
 *     Inside the sandbox as its PID 1. Starts ARGV, relays each connection accepted on the listening
 *     socket to 127.0.0.1:PORT in the sandbox's own network (one poll loop, no fork per connection),
 *     forwards a stop request to the workload as SIGTERM, reaps every orphan and exits with the
 *     workload's status, which it also reports on the lifeline. --unsetenv removes a variable the
 *     runtime added (runc sets HOME) so the workload's environment is exactly the replica's. The lifeline is a socket whose other
 *     end only Skiff holds: when Skiff dies, even by SIGKILL, it reads EOF and kills the sandbox.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <grp.h>

#define MAX_CONNS 256
#define BUF_SIZE 16384
#define MAX_LIST 32

static void die(const char *what) {
  fprintf(stderr, "skiff-init: %s: %s\n", what, strerror(errno));
  exit(125);
}

static void usage(const char *msg) {
  fprintf(stderr, "skiff-init: %s\n", msg);
  exit(125);
}

static long parse_num(const char *s, const char *flag) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *s == 0 || *end != 0 || v < 0) {
    fprintf(stderr, "skiff-init: %s wants a non-negative number, got '%s'\n", flag, s);
    exit(125);
  }
  return v;
}

/* ---------------------------------------------------------------- launch (host side) */

static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) die(path);
  size_t len = strlen(text);
  if (write(fd, text, len) != (ssize_t)len) die(path);
  close(fd);
}

static int launch(int argc, char **argv) {
  const char *listen_path = NULL, *stage = NULL;
  const char *cgroups[MAX_LIST], *bind_src[MAX_LIST], *bind_name[MAX_LIST];
  int bind_rw[MAX_LIST];
  int ncg = 0, nbind = 0;
  long uid = -1, gid = -1;
  int i = 2;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) { i++; break; }
    if (i + 1 >= argc) usage("launch: a flag lacks its value");
    if (strcmp(a, "--listen") == 0) listen_path = argv[++i];
    else if (strcmp(a, "--stage") == 0) stage = argv[++i];
    else if (strcmp(a, "--uid") == 0) uid = parse_num(argv[++i], a);
    else if (strcmp(a, "--gid") == 0) gid = parse_num(argv[++i], a);
    else if (strcmp(a, "--cgroup") == 0) {
      if (ncg == MAX_LIST) usage("launch: too many --cgroup");
      cgroups[ncg++] = argv[++i];
    } else if (strcmp(a, "--bind") == 0 || strcmp(a, "--bind-rw") == 0) {
      if (nbind == MAX_LIST || i + 2 >= argc) usage("launch: --bind SRC NAME");
      bind_rw[nbind] = strcmp(a, "--bind-rw") == 0;
      bind_src[nbind] = argv[++i];
      bind_name[nbind++] = argv[++i];
    } else usage("launch: unknown flag");
  }
  if (i >= argc) usage("launch: no program after --");
  pid_t parent = getppid();

  if (listen_path) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(listen_path) >= sizeof sa.sun_path) usage("launch: socket path too long");
    strcpy(sa.sun_path, listen_path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    unlink(listen_path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die(listen_path);
    if (chmod(listen_path, 0600) < 0) die(listen_path);
    if (listen(fd, 128) < 0) die("listen");
    if (fd != 3) {
      if (dup2(fd, 3) < 0) die("dup2");
      close(fd);
    }
  }

  char pid[32];
  snprintf(pid, sizeof pid, "%d\n", getpid());
  for (int c = 0; c < ncg; c++) write_file(cgroups[c], pid);

  if (stage) {
        int fds[MAX_LIST];
    if (unshare(CLONE_NEWNS) < 0) die("unshare(CLONE_NEWNS)");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) die("make / private");
    /* Opened in the new namespace (a bind source must be one of its mounts), before the tmpfs hides them. */
    for (int b = 0; b < nbind; b++) {
      fds[b] = open(bind_src[b], O_PATH | O_CLOEXEC);
      if (fds[b] < 0) die(bind_src[b]);
    }
    if (mount("skiff-stage", stage, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k") < 0) die(stage);
    for (int b = 0; b < nbind; b++) {
      char src[64], dst[4096];
      struct stat st;
      if (fstat(fds[b], &st) < 0) die(bind_src[b]);
      snprintf(src, sizeof src, "/proc/self/fd/%d", fds[b]);
      snprintf(dst, sizeof dst, "%s/%s", stage, bind_name[b]);
      if (S_ISDIR(st.st_mode)) {
        if (mkdir(dst, 0755) < 0) die(dst);
      } else {
        int f = open(dst, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        if (f < 0) die(dst);
        close(f);
      }
      if (mount(src, dst, NULL, MS_BIND, NULL) < 0) die(bind_src[b]);
      if (!bind_rw[b] && mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0) die(dst);
      close(fds[b]);
    }
  }

  if (gid >= 0) {
    if (setgroups(0, NULL) < 0) die("setgroups");
    if (setresgid(gid, gid, gid) < 0) die("setresgid");
  }
  if (uid >= 0 && setresuid(uid, uid, uid) < 0) die("setresuid");
  /* After the uid change: changing credentials clears the parent-death signal. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) die("PR_SET_PDEATHSIG");
  if (getppid() != parent) exit(125);
  execvp(argv[i], &argv[i]);
  die(argv[i]);
  return 125;
}

/* ---------------------------------------------------------------- init (inside the sandbox) */

struct conn {
  int a, b; /* a: accepted client, b: upstream TCP */
  int connecting, a_eof, b_eof, b_shut, a_shut;
  char *ab, *ba; /* client->upstream, upstream->client */
  size_t ab_len, ab_off, ba_len, ba_off;
};

struct init {
  int listen_fd, lifeline, sfd, port;
  pid_t child;
  int child_status, child_done, term_sent;
  struct conn conns[MAX_CONNS];
  int nconns;
  char cmd[64];
  size_t cmd_len;
};

static void say(struct init *in, const char *fmt, long v) {
  char line[64];
  int n = snprintf(line, sizeof line, fmt, v);
  if (in->lifeline >= 0) (void)!send(in->lifeline, line, n, MSG_NOSIGNAL);
}

static void conn_close(struct init *in, int idx) {
  struct conn *c = &in->conns[idx];
  close(c->a);
  close(c->b);
  free(c->ab);
  free(c->ba);
  in->conns[idx] = in->conns[--in->nconns];
}

static void accept_one(struct init *in) {
  int a = accept4(in->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (a < 0) return;
  if (in->nconns == MAX_CONNS) { close(a); return; }
  int b = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (b < 0) { close(a); return; }
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(in->port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int r = connect(b, (struct sockaddr *)&sin, sizeof sin);
  if (r < 0 && errno != EINPROGRESS) { close(a); close(b); return; }
  struct conn *c = &in->conns[in->nconns];
  memset(c, 0, sizeof *c);
  c->a = a;
  c->b = b;
  c->connecting = r < 0;
  c->ab = malloc(BUF_SIZE);
  c->ba = malloc(BUF_SIZE);
  if (!c->ab || !c->ba) { free(c->ab); free(c->ba); close(a); close(b); return; }
  in->nconns++;
}

/* Moves bytes one way; returns -1 when the connection must be dropped. */
static int pump_in(int from, char *buf, size_t *len, size_t *off, int *eof) {
  ssize_t n = recv(from, buf, BUF_SIZE, 0);
  if (n == 0) { *eof = 1; return 0; }
  if (n < 0) return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
  *len = (size_t)n;
  *off = 0;
  return 0;
}

static int pump_out(int to, char *buf, size_t *len, size_t *off) {
  ssize_t n = send(to, buf + *off, *len - *off, MSG_NOSIGNAL);
  if (n < 0) return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
  *off += (size_t)n;
  if (*off == *len) *len = *off = 0;
  return 0;
}

static int conn_step(struct conn *c, short ra, short rb) {
  if (c->connecting) {
    if (!(rb & (POLLOUT | POLLERR | POLLHUP))) return 0;
    int err = 0;
    socklen_t l = sizeof err;
    if (getsockopt(c->b, SOL_SOCKET, SO_ERROR, &err, &l) < 0 || err) return -1;
    c->connecting = 0;
    return 0;
  }
  if ((ra & (POLLIN | POLLHUP | POLLERR)) && c->ab_len == 0 && !c->a_eof && pump_in(c->a, c->ab, &c->ab_len, &c->ab_off, &c->a_eof) < 0) return -1;
  if ((rb & (POLLIN | POLLHUP | POLLERR)) && c->ba_len == 0 && !c->b_eof && pump_in(c->b, c->ba, &c->ba_len, &c->ba_off, &c->b_eof) < 0) return -1;
  if (c->ab_len && pump_out(c->b, c->ab, &c->ab_len, &c->ab_off) < 0) return -1;
  if (c->ba_len && pump_out(c->a, c->ba, &c->ba_len, &c->ba_off) < 0) return -1;
  if (c->a_eof && !c->ab_len && !c->b_shut) { shutdown(c->b, SHUT_WR); c->b_shut = 1; }
  if (c->b_eof && !c->ba_len && !c->a_shut) { shutdown(c->a, SHUT_WR); c->a_shut = 1; }
  return (c->a_shut && c->b_shut) ? -1 : 0;
}

static void end_all(int code) {
  kill(-1, SIGKILL);
  while (waitpid(-1, NULL, 0) > 0 || errno == EINTR) {
  }
  exit(code);
}

static void reap(struct init *in) {
  int st;
  pid_t p;
  while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
    if (p == in->child) {
      in->child_done = 1;
      in->child_status = st;
    }
  }
  if (!in->child_done) return;
  int code;
  if (WIFSIGNALED(in->child_status)) {
    say(in, "exit signal %ld\n", WTERMSIG(in->child_status));
    code = 128 + WTERMSIG(in->child_status);
  } else {
    say(in, "exit code %ld\n", WEXITSTATUS(in->child_status));
    code = WEXITSTATUS(in->child_status);
  }
  end_all(code);
}

static void on_lifeline(struct init *in) {
  char buf[64];
  ssize_t n = recv(in->lifeline, buf, sizeof buf, 0);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) end_all(137);
  for (ssize_t k = 0; k < n; k++) {
    if (buf[k] != '\n') {
      if (in->cmd_len < sizeof in->cmd - 1) in->cmd[in->cmd_len++] = buf[k];
      continue;
    }
    in->cmd[in->cmd_len] = 0;
    if (strcmp(in->cmd, "term") == 0) kill(in->child, SIGTERM);
    else if (strcmp(in->cmd, "kill") == 0) end_all(137);
    in->cmd_len = 0;
  }
}

static const struct { const char *name; int res; } rlimits[] = {
    {"as", RLIMIT_AS}, {"nproc", RLIMIT_NPROC}, {"nofile", RLIMIT_NOFILE}, {"cpu", RLIMIT_CPU},
    {"fsize", RLIMIT_FSIZE}, {"core", RLIMIT_CORE}, {"data", RLIMIT_DATA},
};

static void set_rlimit(const char *spec) {
  const char *eq = strchr(spec, '=');
  if (!eq) usage("--rlimit wants NAME=VALUE");
  for (size_t k = 0; k < sizeof rlimits / sizeof rlimits[0]; k++) {
    if (strlen(rlimits[k].name) == (size_t)(eq - spec) && strncmp(spec, rlimits[k].name, eq - spec) == 0) {
      struct rlimit rl;
      rl.rlim_cur = rl.rlim_max = (rlim_t)parse_num(eq + 1, "--rlimit");
      if (setrlimit(rlimits[k].res, &rl) < 0) die(spec);
      return;
    }
  }
  usage("--rlimit: unknown limit name");
}

static void start_child(struct init *in, char **argv, sigset_t *old) {
  int errpipe[2];
  if (pipe2(errpipe, O_CLOEXEC) < 0) die("pipe2");
  in->child = fork();
  if (in->child < 0) die("fork");
  if (in->child == 0) {
    close(errpipe[0]);
    signal(SIGPIPE, SIG_DFL);
    sigprocmask(SIG_SETMASK, old, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int keep = errpipe[1];
    if (keep != 3) {
      if (dup2(keep, 3) < 0) _exit(127);
      keep = 3;
    }
    fcntl(keep, F_SETFD, FD_CLOEXEC);
    close_range(4, ~0U, 0);
    execvp(argv[0], argv);
    int e = errno;
    (void)!write(keep, &e, sizeof e);
    fprintf(stderr, "skiff-init: cannot run %s: %s\n", argv[0], strerror(e));
    _exit(127);
  }
  close(errpipe[1]);
  int e = 0;
  ssize_t n;
  do n = read(errpipe[0], &e, sizeof e);
  while (n < 0 && errno == EINTR);
  close(errpipe[0]);
  if (n == sizeof e) say(in, "execfail %ld\n", e);
  else say(in, "started %ld\n", in->child);
}

static _Noreturn void init_main(int argc, char **argv) {
  static struct init in;
  in.listen_fd = -1;
  in.lifeline = -1;
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) { i++; break; }
    if (i + 1 >= argc) usage("a flag lacks its value");
    if (strcmp(a, "--port") == 0) in.port = (int)parse_num(argv[++i], a);
    else if (strcmp(a, "--listen-fd") == 0) in.listen_fd = (int)parse_num(argv[++i], a);
    else if (strcmp(a, "--lifeline-fd") == 0) in.lifeline = (int)parse_num(argv[++i], a);
    else if (strcmp(a, "--rlimit") == 0) set_rlimit(argv[++i]);
    else if (strcmp(a, "--unsetenv") == 0) unsetenv(argv[++i]);
    else usage("unknown flag");
  }
  if (i >= argc) usage("no command after --");
  /* The parent is bwrap or runc: if it goes, so does the sandbox. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  /* The workload runs as the same uid; this keeps it from reading or writing this process's memory. */
  prctl(PR_SET_DUMPABLE, 0);
  signal(SIGPIPE, SIG_IGN);
  sigset_t mask, old;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  if (sigprocmask(SIG_BLOCK, &mask, &old) < 0) die("sigprocmask");
  in.sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (in.sfd < 0) die("signalfd");
  if (in.listen_fd >= 0) {
    fcntl(in.listen_fd, F_SETFD, FD_CLOEXEC);
    fcntl(in.listen_fd, F_SETFL, O_NONBLOCK);
  }
  if (in.lifeline >= 0) {
    fcntl(in.lifeline, F_SETFD, FD_CLOEXEC);
    fcntl(in.lifeline, F_SETFL, O_NONBLOCK);
  }
  start_child(&in, &argv[i], &old);

  static struct pollfd pfd[3 + 2 * MAX_CONNS];
  for (;;) {
    int n = 0;
    pfd[n++] = (struct pollfd){.fd = in.sfd, .events = POLLIN};
    pfd[n++] = (struct pollfd){.fd = in.lifeline, .events = POLLIN};
    pfd[n++] = (struct pollfd){.fd = in.nconns < MAX_CONNS ? in.listen_fd : -1, .events = POLLIN};
    for (int k = 0; k < in.nconns; k++) {
      struct conn *c = &in.conns[k];
      short ea = 0, eb = 0;
      if (c->connecting) eb = POLLOUT;
      else {
        if (!c->ab_len && !c->a_eof) ea |= POLLIN;
        if (c->ba_len) ea |= POLLOUT;
        if (!c->ba_len && !c->b_eof) eb |= POLLIN;
        if (c->ab_len) eb |= POLLOUT;
      }
      pfd[n++] = (struct pollfd){.fd = c->a, .events = ea};
      pfd[n++] = (struct pollfd){.fd = c->b, .events = eb};
    }
    int conns_polled = in.nconns;
    if (poll(pfd, n, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    /* Connections first, back to front: closing one moves the last into its slot. */
    for (int k = conns_polled - 1; k >= 0; k--) {
      if (conn_step(&in.conns[k], pfd[3 + 2 * k].revents, pfd[4 + 2 * k].revents) < 0) conn_close(&in, k);
    }
    if (pfd[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (read(in.sfd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGCHLD) continue;
        /* SIGTERM, SIGINT, SIGHUP from outside: the workload decides what they mean. */
        kill(in.child, (int)si.ssi_signo);
      }
      reap(&in);
    }
    if (pfd[1].revents) on_lifeline(&in);
    if (pfd[2].revents & POLLIN) accept_one(&in);
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "launch") == 0) return launch(argc, argv);
  init_main(argc, argv);
}
