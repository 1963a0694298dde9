#include "csandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/audit.h>
#include <stddef.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/openat2.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* The new mount API, by number: glibc's wrappers and linux/mount.h do not mix. */
#define CSB_OPEN_TREE_CLONE 1U
#define CSB_AT_RECURSIVE 0x8000
#define CSB_AT_EMPTY_PATH 0x1000
#define CSB_MOVE_MOUNT_F_EMPTY_PATH 0x4U
#define CSB_MOUNT_ATTR_RDONLY 0x1ULL
#define CSB_MOUNT_ATTR_NOSUID 0x2ULL
#define CSB_MOUNT_ATTR_NODEV 0x4ULL
#define CSB_MOUNT_ATTR_IDMAP 0x100000ULL
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#define CSB_FSOPEN_CLOEXEC 0x1U
#define CSB_FSCONFIG_SET_FLAG 0U
#define CSB_FSCONFIG_SET_STRING 1U
#define CSB_FSCONFIG_CMD_CREATE 6U

struct csb_mount_attr {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};

/* Descriptors at or above this are scratch space for shuffling fds in the child. */
#define CSANDBOX_SCRATCH_FD 1000
/* The child's stack until execve. */
#define CSANDBOX_CHILD_STACK (256 * 1024)
#define CSANDBOX_MAX_SLOTS 32

struct child_report {
    int step;
    int err;
    int detail;
};

static void child_fail(int err_fd, int step, int err, int detail) {
    struct child_report report = { step, err, detail };
    ssize_t ignored = write(err_fd, &report, sizeof report);
    (void)ignored;
    _exit(127);
}

static int set_tree_readonly(const char *path, int recursive) {
    struct csb_mount_attr attr = { CSB_MOUNT_ATTR_RDONLY | CSB_MOUNT_ATTR_NOSUID | CSB_MOUNT_ATTR_NODEV, 0, 0, 0 };
    return (int)syscall(SYS_mount_setattr, AT_FDCWD, path, recursive ? CSB_AT_RECURSIVE : 0, &attr, sizeof attr);
}

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = write(fd, text, strlen(text));
    int err = errno;
    close(fd);
    errno = err;
    return n < 0 ? -1 : 0;
}

static int loopback_up(void) {
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) return -1;
    struct ifreq request;
    memset(&request, 0, sizeof request);
    strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
    int result = ioctl(sock, SIOCGIFFLAGS, &request);
    if (result == 0) {
        request.ifr_flags |= IFF_UP | IFF_RUNNING;
        result = ioctl(sock, SIOCSIFFLAGS, &request);
    }
    int err = errno;
    close(sock);
    errno = err;
    return result;
}

/* Joins `a`, "/" and `b` into `out` (PATH_MAX bytes); -1 with ENAMETOOLONG when it does not fit. */
static int join_path(char *out, const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la + 1 + lb + 1 > PATH_MAX) { errno = ENAMETOOLONG; return -1; }
    memcpy(out, a, la);
    out[la] = '/';
    memcpy(out + la + 1, b, lb + 1);
    return 0;
}

struct csb_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* Copies the entry `name` of the folder `from` (a descriptor of it: `source`) into the folder `to`
 * (`into`): a folder or a file as a recursive bind, a symlink as the same symlink; anything else is
 * left out. */
static int copy_entry(int source, int into, const char *from, const char *to, const char *name) {
    char host[PATH_MAX], target[PATH_MAX];
    struct stat info;
    if (fstatat(source, name, &info, AT_SYMLINK_NOFOLLOW) < 0) return -1;
    if (join_path(host, strcmp(from, "/") ? from : "", name) < 0 || join_path(target, to, name) < 0) return -1;
    if (S_ISDIR(info.st_mode)) {
        if (mkdirat(into, name, 0755) < 0) return -1;
        return mount(host, target, NULL, MS_BIND | MS_REC, NULL);
    }
    if (S_ISREG(info.st_mode)) {
        int fd = openat(into, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) return -1;
        close(fd);
        return mount(host, target, NULL, MS_BIND, NULL);
    }
    if (S_ISLNK(info.st_mode)) {
        char link[PATH_MAX];
        ssize_t n = readlinkat(source, name, link, sizeof link - 1);
        if (n < 0) return -1;
        link[n] = 0;
        return symlinkat(link, into, name);
    }
    return 0;
}

/* Makes the folder `to`, a fresh tmpfs, show every entry of the host folder `from` but `skip`. No
 * allocation (the child shares the parent's memory): getdents64 into a buffer on the stack. */
static int bind_entries(const char *from, const char *to, const char *skip) {
    if (mount("tmpfs", to, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") < 0) return -1;
    int source = open(from, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (source < 0) return -1;
    int into = open(to, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (into < 0) { close(source); return -1; }
    char buffer[8192];
    int result = 0;
    for (;;) {
        long n = syscall(SYS_getdents64, source, buffer, sizeof buffer);
        if (n <= 0) { result = (int)n; break; }
        for (long offset = 0; offset < n && result == 0;) {
            const struct csb_dirent64 *entry = (const void *)(buffer + offset);
            offset += entry->d_reclen;
            const char *name = entry->d_name;
            if (!strcmp(name, ".") || !strcmp(name, "..") || (skip && !strcmp(name, skip))) continue;
            result = copy_entry(source, into, from, to, name);
        }
        if (result < 0) break;
    }
    int err = errno;
    close(source);
    close(into);
    errno = err;
    return result < 0 ? -1 : 0;
}

/* CSANDBOX_MOUNT_NEW_ROOT. Each line of `lines` is a folder relative to the new root: "+P" makes the
 * host folder /P a tmpfs showing its entries (a place for a mount point inside a host folder), a
 * plain line is made with mkdir. The caller orders them: skeletons first, parents first. */
static int new_root(const char *staging, const char *lines) {
    const char *skip = staging + 1; /* the staging folder's own name in / is left out */
    if (strchr(skip, '/')) { errno = EINVAL; return -1; }
    if (bind_entries("/", staging, skip) < 0) return -1;
    char path[PATH_MAX], line[PATH_MAX];
    if (join_path(path, staging, skip) < 0 || mkdir(path, 0755) < 0) return -1;
    for (const char *next = lines ? lines : ""; *next;) {
        const char *end = strchr(next, '\n');
        size_t length = end ? (size_t)(end - next) : strlen(next);
        if (length >= sizeof line) { errno = ENAMETOOLONG; return -1; }
        memcpy(line, next, length);
        line[length] = 0;
        next += length + (end ? 1 : 0);
        if (line[0] == '+') {
            char host[PATH_MAX];
            if (join_path(host, "", line + 1) < 0 || join_path(path, staging, line + 1) < 0) return -1;
            if (bind_entries(host, path, NULL) < 0) return -1;
        } else if (length) {
            if (join_path(path, staging, line) < 0) return -1;
            if (mkdir(path, 0755) < 0 && errno != EEXIST) return -1;
        }
    }
    if (join_path(path, staging, ".old-root") < 0 || mkdir(path, 0700) < 0 || chdir(staging) < 0) return -1;
    if (syscall(SYS_pivot_root, ".", ".old-root") < 0 || chdir("/") < 0) return -1;
    if (umount2("/.old-root", MNT_DETACH) < 0) return -1;
    return rmdir("/.old-root");
}

/* One mount step; returns 0 or -1 with errno. */
static int mount_step(const struct csandbox_mount *step, int *slots, int idmap_userns_fd) {
    struct stat info;
    switch (step->kind) {
    case CSANDBOX_MOUNT_PRIVATE:
        return mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    case CSANDBOX_MOUNT_CLONE:
        if (step->slot < 0 || step->slot >= CSANDBOX_MAX_SLOTS) { errno = EINVAL; return -1; }
        slots[step->slot] = (int)syscall(SYS_open_tree, AT_FDCWD, step->source,
                                         CSB_OPEN_TREE_CLONE | O_CLOEXEC | CSB_AT_RECURSIVE);
        return slots[step->slot] < 0 ? -1 : 0;
    case CSANDBOX_MOUNT_READONLY_TREE:
        return set_tree_readonly(step->target, 1);
    case CSANDBOX_MOUNT_TMPFS:
        return mount("tmpfs", step->target, "tmpfs", step->flags, step->data);
    case CSANDBOX_MOUNT_MKDIR:
        if (mkdir(step->target, 0755) == 0 || errno == EEXIST) return 0;
        if (errno == EROFS && stat(step->target, &info) == 0) return 0;
        return -1;
    case CSANDBOX_MOUNT_TOUCH: {
        int fd = open(step->target, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) return -1;
        close(fd);
        return 0;
    }
    case CSANDBOX_MOUNT_ATTACH:
        if (step->slot < 0 || step->slot >= CSANDBOX_MAX_SLOTS || slots[step->slot] < 0) { errno = EBADF; return -1; }
        return (int)syscall(SYS_move_mount, slots[step->slot], "", AT_FDCWD, step->target, CSB_MOVE_MOUNT_F_EMPTY_PATH);
    case CSANDBOX_MOUNT_BIND_READONLY:
        if (lstat(step->target, &info) < 0 || S_ISLNK(info.st_mode)) return 0;
        if (mount(step->target, step->target, NULL, MS_BIND | MS_REC, NULL) < 0) return -1;
        return set_tree_readonly(step->target, 1);
    case CSANDBOX_MOUNT_BIND_FILE:
        if (lstat(step->target, &info) < 0 || S_ISLNK(info.st_mode)) return 0;
        return mount(step->source, step->target, NULL, MS_BIND, NULL);
    case CSANDBOX_MOUNT_PROC:
        /* Read-only: no kernel knob, and no /proc/PID/mem of another process, can be opened for writing. */
        return mount("proc", step->target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL);
    case CSANDBOX_MOUNT_DEVPTS:
        return mount("devpts", step->target, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620");
    case CSANDBOX_MOUNT_SYMLINK:
        return symlink(step->source, step->target) == 0 || errno == EEXIST ? 0 : -1;
    case CSANDBOX_MOUNT_HARDEN_SLOT: {
        if (step->slot < 0 || step->slot >= CSANDBOX_MAX_SLOTS || slots[step->slot] < 0) { errno = EBADF; return -1; }
        struct csb_mount_attr attr = { CSB_MOUNT_ATTR_NOSUID | CSB_MOUNT_ATTR_NODEV, 0, 0, 0 };
        if (step->flags == 1 && idmap_userns_fd >= 0) {
            attr.attr_set |= CSB_MOUNT_ATTR_IDMAP;
            attr.userns_fd = (uint64_t)idmap_userns_fd;
        }
        return (int)syscall(SYS_mount_setattr, slots[step->slot], "", CSB_AT_EMPTY_PATH | CSB_AT_RECURSIVE, &attr, sizeof attr);
    }
    case CSANDBOX_MOUNT_CHOWN:
        return chown(step->target, (uid_t)(step->flags >> 32), (gid_t)(step->flags & 0xffffffffUL));
    case CSANDBOX_MOUNT_CLONE_BENEATH: {
        if (step->slot < 0 || step->slot >= CSANDBOX_MAX_SLOTS) { errno = EINVAL; return -1; }
        /* Opened here, in the new namespace: open_tree clones only mounts of the caller's own. */
        int root = open(step->source, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root < 0) return -1;
        struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
        int folder = (int)syscall(SYS_openat2, root, step->data, &how, sizeof how);
        int err = errno;
        close(root);
        if (folder < 0) { errno = err; return -1; }
        slots[step->slot] = (int)syscall(SYS_open_tree, folder, "", CSB_OPEN_TREE_CLONE | O_CLOEXEC | CSB_AT_RECURSIVE | CSB_AT_EMPTY_PATH);
        err = errno;
        close(folder);
        errno = err;
        return slots[step->slot] < 0 ? -1 : 0;
    }
    case CSANDBOX_MOUNT_NEW_ROOT:
        return new_root(step->target, step->data);
    }
    errno = EINVAL;
    return -1;
}

/* Empties the bounding, ambient, effective, permitted and inheritable sets: uid 0 in the sandbox
 * stays uid 0 for file ownership but holds no capability, and exec cannot give one back. */
static int drop_capabilities(void) {
    for (int cap = 0; cap < 64; cap++) {
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno == EINVAL) break;
    }
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    return (int)syscall(SYS_capset, &header, data);
}

static void confine(const struct csandbox_confinement *c, int err_fd) {
    for (int i = 0; i < 2; i++) {
        if (c->cgroup_procs_fds[i] >= 0 && write(c->cgroup_procs_fds[i], "0\n", 2) < 0)
            child_fail(err_fd, CSANDBOX_STEP_CGROUP, errno, i);
    }
    if (c->uid_map) {
        if (write_file("/proc/self/setgroups", "deny") < 0 && errno != ENOENT)
            child_fail(err_fd, CSANDBOX_STEP_USERNS, errno, 0);
        if (write_file("/proc/self/uid_map", c->uid_map) < 0) child_fail(err_fd, CSANDBOX_STEP_USERNS, errno, 1);
        if (write_file("/proc/self/gid_map", c->gid_map) < 0) child_fail(err_fd, CSANDBOX_STEP_USERNS, errno, 2);
    }
    if (c->netns_fd >= 0 && setns(c->netns_fd, CLONE_NEWNET) < 0) child_fail(err_fd, CSANDBOX_STEP_NETNS, errno, 0);
    /* A private copy of the session's prepared mounts: cheaper than building them again. */
    if (c->mntns_fd >= 0 && (setns(c->mntns_fd, CLONE_NEWNS) < 0 || unshare(CLONE_NEWNS) < 0))
        child_fail(err_fd, CSANDBOX_STEP_MOUNT, errno, -1);
    if (c->loopback_up && loopback_up() < 0) child_fail(err_fd, CSANDBOX_STEP_LOOPBACK, errno, 0);
    if (c->hostname && sethostname(c->hostname, strlen(c->hostname)) < 0)
        child_fail(err_fd, CSANDBOX_STEP_HOSTNAME, errno, 0);

    int slots[CSANDBOX_MAX_SLOTS];
    for (int i = 0; i < CSANDBOX_MAX_SLOTS; i++) slots[i] = -1;
    for (int i = 0; i < c->mount_count; i++) {
        if (mount_step(&c->mounts[i], slots, c->idmap_userns_fd) < 0) child_fail(err_fd, CSANDBOX_STEP_MOUNT, errno, i);
    }
    for (int i = 0; i < CSANDBOX_MAX_SLOTS; i++) {
        if (slots[i] >= 0) close(slots[i]);
    }
    /* Last, once the mounts (which need host root) are made: become the namespace's root, which
     * is an unprivileged uid on the host, with no supplementary groups left over. Raw syscalls:
     * glibc's setxid wrappers would signal the parent's threads, whose memory the child shares. */
    if (c->userns_fd >= 0) {
        if (setns(c->userns_fd, CLONE_NEWUSER) < 0) child_fail(err_fd, CSANDBOX_STEP_JOIN_USERNS, errno, 0);
        if (syscall(SYS_setgroups, 0, NULL) < 0) child_fail(err_fd, CSANDBOX_STEP_JOIN_USERNS, errno, 1);
        if (syscall(SYS_setresgid, 0, 0, 0) < 0) child_fail(err_fd, CSANDBOX_STEP_JOIN_USERNS, errno, 2);
        if (syscall(SYS_setresuid, 0, 0, 0) < 0) child_fail(err_fd, CSANDBOX_STEP_JOIN_USERNS, errno, 3);
    }
}

/* Last, once the descriptors are in place: a low RLIMIT_NOFILE would forbid the scratch fds. */
static void apply_rlimits(const struct csandbox_confinement *c, int err_fd) {
    for (int i = 0; i < c->rlimit_count; i++) {
        struct rlimit limit = { c->rlimits[i].value, c->rlimits[i].value };
        if (setrlimit(c->rlimits[i].resource, &limit) < 0) child_fail(err_fd, CSANDBOX_STEP_RLIMIT, errno, i);
    }
}

/* What the child needs; it lives on the parent's stack, which the child shares (CLONE_VM). */
struct child_context {
    const struct csandbox_spawn_args *args;
    int err_fd;
    /* With CLONE_FILES: the child first takes a table of its own holding only the descriptors
     * below this (close_range's CLOSE_RANGE_UNSHARE); -1 when it got a copy of the whole table. */
    int unshare_below;
};

/* A child given a copy of the parent's whole descriptor table closes every one of them again at
 * execve (close-on-exec), each with a flush: with a thousand live sessions (8 descriptors each)
 * that was 15% of the server's time, and 17 ms more per spawn than with one. So the child shares
 * the table instead (CLONE_FILES), and what it needs is first put into these slots, low numbers
 * taken once: its own table is then a copy of the descriptors below the highest slot alone.
 * One spawn at a time uses them; an unused slot holds /dev/null. */
#define CSB_SPAWN_SLOTS 72
#define CSB_CLOSE_RANGE_UNSHARE (1U << 1)
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static int spawn_slots[CSB_SPAWN_SLOTS];
static int slots_end = -1;     /* one past the highest slot once they are made, else -1 */
static int slot_filler = -1;

/* Under slots_lock. Returns 0 when the slots can be used. */
static int make_slots(void) {
    if (slots_end >= 0) return 0;
    if (slot_filler < 0) slot_filler = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (slot_filler < 0) return -1;
    int end = 0;
    for (int i = 0; i < CSB_SPAWN_SLOTS; i++) {
        spawn_slots[i] = fcntl(slot_filler, F_DUPFD_CLOEXEC, 0);
        if (spawn_slots[i] < 0) {
            for (int j = 0; j < i; j++) close(spawn_slots[j]);
            return -1;
        }
        if (spawn_slots[i] >= end) end = spawn_slots[i] + 1;
    }
    slots_end = end;
    return 0;
}

/* Puts `fd` (if any) into the next slot and returns the slot's number (-1 for none); sets
 * `*failed` when the slot could not take it. */
static int place(int fd, int *used, int *failed) {
    if (fd < 0) return fd;
    int slot = spawn_slots[(*used)++];
    if (dup3(fd, slot, O_CLOEXEC) < 0) *failed = 1;
    return slot;
}

/* Runs in the child between clone and execve, on its own stack in the parent's memory: only
 * async-signal-safe calls, no allocation, and no writes to anything but its own locals. */
static int child_main(void *opaque) {
    const struct child_context *context = opaque;
    const struct csandbox_spawn_args *args = context->args;
    const struct csandbox_confinement *c = args->confinement;
    /* First of all, before any descriptor changes: a table of its own (kernels before 5.9 lack
     * CLOSE_RANGE_UNSHARE, and copy the whole table instead). */
    if (context->unshare_below >= 0
        && syscall(SYS_close_range, (unsigned)context->unshare_below, ~0U, CSB_CLOSE_RANGE_UNSHARE) < 0
        && unshare(CLONE_FILES) < 0)
        child_fail(context->err_fd, CSANDBOX_STEP_FDS, errno, -1);
    /* The error pipe must not sit where a mapped target goes. */
    int err_fd = fcntl(context->err_fd, F_DUPFD_CLOEXEC, CSANDBOX_SCRATCH_FD);
    if (err_fd < 0) err_fd = context->err_fd;

    /* Signals are still blocked (by the parent): reset every handler before unblocking, so no
     * parent handler ever runs in the child. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        sigaction(sig, &dfl, NULL);  /* fails harmlessly for SIGKILL, SIGSTOP and the RT gaps */
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    if (setsid() < 0) child_fail(err_fd, CSANDBOX_STEP_SETUP, errno, 0);
    if (c) confine(c, err_fd);

    /* Move every source out of the way first, so a target never clobbers a later source. */
    int moved[64];  /* csandbox_spawn refuses more */
    for (int i = 0; i < args->fd_count; i++) {
        moved[i] = fcntl(args->fds[i].source, F_DUPFD_CLOEXEC, CSANDBOX_SCRATCH_FD);
        if (moved[i] < 0) child_fail(err_fd, CSANDBOX_STEP_FDS, errno, i);
    }
    int highest = 2;
    for (int i = 0; i < args->fd_count; i++) {
        if (dup2(moved[i], args->fds[i].target) < 0) child_fail(err_fd, CSANDBOX_STEP_FDS, errno, i);
        if (args->fds[i].target > highest) highest = args->fds[i].target;
    }
    /* Everything above the mapped descriptors closes at exec, the error pipe included. */
    if (syscall(SYS_close_range, (unsigned)highest + 1, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
        for (int fd = highest + 1; fd < 65536; fd++) {
            if (fd != err_fd) fcntl(fd, F_SETFD, FD_CLOEXEC);
        }
    }
    if (chdir(args->cwd) < 0) child_fail(err_fd, CSANDBOX_STEP_CHDIR, errno, 0);

    if (c) {
        apply_rlimits(c, err_fd);
        if (drop_capabilities() < 0) child_fail(err_fd, CSANDBOX_STEP_CAPS, errno, 0);
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) child_fail(err_fd, CSANDBOX_STEP_NO_NEW_PRIVS, errno, 0);
        if (c->filter_len > 0) {
            /* The last step before execve: from here on every syscall passes the filter. */
            struct sock_fprog program = { c->filter_len, (struct sock_filter *)c->filter };
            if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program, 0, 0) < 0)
                child_fail(err_fd, CSANDBOX_STEP_SECCOMP, errno, 0);
        }
    }
    execve(args->path, args->argv, args->envp);
    child_fail(err_fd, CSANDBOX_STEP_EXEC, errno, 0);
    return 127;
}

int csandbox_spawn(const struct csandbox_spawn_args *args, pid_t *pid_out, int *step_out, int *detail_out) {
    int err_pipe[2];
    *step_out = CSANDBOX_STEP_SETUP;
    *detail_out = 0;
    if (pipe2(err_pipe, O_CLOEXEC) < 0) return errno;
    /* vfork semantics (shared memory, parent suspended until exec) make a spawn cost the same
     * however large the parent is; fork would copy the page tables of the whole Swift process. */
    size_t stack_size = CSANDBOX_CHILD_STACK;
    void *stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        int err = errno;
        close(err_pipe[0]);
        close(err_pipe[1]);
        return err;
    }
    if (args->fd_count > 64) {
        munmap(stack, stack_size);
        close(err_pipe[0]);
        close(err_pipe[1]);
        *step_out = CSANDBOX_STEP_FDS;
        return EMFILE;
    }
    /* The arguments as the child sees them: every descriptor it uses moved into a slot. */
    struct csandbox_spawn_args placed = *args;
    struct csandbox_fd fds[64];
    struct csandbox_confinement confinement;
    struct child_context context = { &placed, err_pipe[1], -1 };
    int used = 0;
    pthread_mutex_lock(&slots_lock);
    if (make_slots() == 0) {
        int failed = 0;
        for (int i = 0; i < args->fd_count; i++) {
            fds[i] = args->fds[i];
            fds[i].source = place(args->fds[i].source, &used, &failed);
        }
        placed.fds = fds;
        if (args->confinement) {
            confinement = *args->confinement;
            confinement.netns_fd = place(confinement.netns_fd, &used, &failed);
            confinement.mntns_fd = place(confinement.mntns_fd, &used, &failed);
            confinement.userns_fd = place(confinement.userns_fd, &used, &failed);
            confinement.idmap_userns_fd = place(confinement.idmap_userns_fd, &used, &failed);
            for (int i = 0; i < 2; i++) confinement.cgroup_procs_fds[i] = place(confinement.cgroup_procs_fds[i], &used, &failed);
            placed.confinement = &confinement;
        }
        context.err_fd = place(err_pipe[1], &used, &failed);
        if (failed) {
            /* Slots that cannot be filled: the whole table, as before. */
            placed = *args;
            context.err_fd = err_pipe[1];
        } else {
            context.unshare_below = slots_end;
        }
    }
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    int flags = CLONE_VM | CLONE_VFORK | SIGCHLD | (args->confinement ? args->confinement->clone_flags : 0)
        | (context.unshare_below >= 0 ? CLONE_FILES : 0);
    pid_t pid = clone(child_main, (char *)stack + stack_size, flags, &context);
    int clone_errno = errno;
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    /* The child has its own table now (it ran until execve or its end): the slots let go of the
     * pipes, or their readers would never see the end. */
    for (int i = 0; i < used; i++) dup3(slot_filler, spawn_slots[i], O_CLOEXEC);
    pthread_mutex_unlock(&slots_lock);
    munmap(stack, stack_size);
    close(err_pipe[1]);
    if (pid < 0) {
        close(err_pipe[0]);
        return clone_errno;
    }

    struct child_report report = { 0, 0, 0 };
    ssize_t n;
    do {
        n = read(err_pipe[0], &report, sizeof report);
    } while (n < 0 && errno == EINTR);
    close(err_pipe[0]);
    if (n == (ssize_t)sizeof report) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        *step_out = report.step;
        *detail_out = report.detail;
        return report.err;
    }
    *pid_out = pid;
    return 0;
}

int csandbox_pipe(int fds[2]) {
    return pipe2(fds, O_CLOEXEC) == 0 ? 0 : errno;
}

int csandbox_thread_nice(int nice) {
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice) == 0 ? 0 : errno;
}

int csandbox_new_netns(void) {
    if (unshare(CLONE_NEWNET) < 0) return -errno;
    if (loopback_up() < 0) return -errno;
    int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int csandbox_listen_in_netns(int netns_fd, unsigned short port) {
    if (setns(netns_fd, CLONE_NEWNET) < 0) return -errno;
    int sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0) return -errno;
    int on = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    struct sockaddr_in address;
    memset(&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(sock, (struct sockaddr *)&address, sizeof address) < 0 || listen(sock, 128) < 0) {
        int err = errno;
        close(sock);
        return -err;
    }
    return sock;
}

#if defined(__x86_64__)
#define CSB_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define CSB_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif
#define CSB_DENY(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM)

/* A filter on the calling thread alone (no TSYNC): it can start no thread or process (which would
 * inherit its view and uid), run no program, and change no namespace, mount or credential. */
static int confine_this_thread(void) {
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, CSB_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#if defined(__x86_64__)
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        CSB_DENY(SYS_fork), CSB_DENY(SYS_vfork),
#endif
        CSB_DENY(SYS_clone),
#ifdef SYS_clone3
        CSB_DENY(SYS_clone3),
#endif
        CSB_DENY(SYS_execve), CSB_DENY(SYS_execveat), CSB_DENY(SYS_setns), CSB_DENY(SYS_unshare), CSB_DENY(SYS_mount),
        CSB_DENY(SYS_umount2), CSB_DENY(SYS_pivot_root), CSB_DENY(SYS_chroot), CSB_DENY(SYS_ptrace), CSB_DENY(SYS_setuid),
        CSB_DENY(SYS_setgid), CSB_DENY(SYS_setreuid), CSB_DENY(SYS_setregid), CSB_DENY(SYS_setresuid), CSB_DENY(SYS_setresgid),
        CSB_DENY(SYS_setfsuid), CSB_DENY(SYS_setfsgid), CSB_DENY(SYS_setgroups), CSB_DENY(SYS_capset),
        CSB_DENY(SYS_open_tree), CSB_DENY(SYS_move_mount), CSB_DENY(SYS_fsopen), CSB_DENY(SYS_fsmount), CSB_DENY(SYS_mount_setattr),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog program = { (unsigned short)(sizeof filter / sizeof filter[0]), filter };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return -errno;
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) < 0 ? -errno : 0;
}

static __thread int thread_in_view;

int csandbox_thread_in_view(void) {
    return thread_in_view;
}

int csandbox_enter_view(int mntns_fd, unsigned int uid, unsigned int gid) {
    /* Signals go to the process's other threads: a handler run here would act with this
     * thread's uid and view (and could not, say, kill toolhost's children on the way out). */
    sigset_t all;
    sigfillset(&all);
    int blocked = pthread_sigmask(SIG_BLOCK, &all, NULL);
    if (blocked != 0) return -blocked;
    if (unshare(CLONE_FS) < 0) return -errno;
    if (setns(mntns_fd, CLONE_NEWNS) < 0) return -errno;
    if (chdir("/") < 0) return -errno;
    if (syscall(SYS_setgroups, 0, NULL) < 0) return -errno;
    if (syscall(SYS_setresgid, gid, gid, gid) < 0) return -errno;
    /* Once no uid is 0 the thread's capability sets are emptied by the kernel. */
    if (syscall(SYS_setresuid, uid, uid, uid) < 0) return -errno;
    if (uid == 0) {
        /* A view kept as root (no unprivileged uid could be had): at least no capability. */
        struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
        struct __user_cap_data_struct data[2];
        memset(data, 0, sizeof data);
        if (syscall(SYS_capset, &header, data) < 0) return -errno;
    }
    int confined = confine_this_thread();
    if (confined == 0) thread_in_view = 1;
    return confined;
}

int csandbox_seccomp_available(void) {
    return prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0 ? errno : 0;
}

int csandbox_exit_code(int status, int *signal_out) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    *signal_out = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    return -1;
}

int csandbox_openat2(int dirfd, const char *path, int flags, unsigned int mode, unsigned long long resolve) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (unsigned long long)(unsigned int)flags;
    how.mode = ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) ? mode : 0;
    how.resolve = resolve;
    long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    return fd < 0 ? -errno : (int)fd;
}


int csandbox_favor_cgroup_moves(const char *name) {
    int fs = (int)syscall(SYS_fsopen, "cgroup", CSB_FSOPEN_CLOEXEC);
    if (fs < 0) return -errno;
    /* Each step names the option the kernel refused, through the errno: ENOENT for named
     * hierarchies disabled at boot, EINVAL for a kernel without favordynmods (before 6.0). */
    if (syscall(SYS_fsconfig, fs, CSB_FSCONFIG_SET_FLAG, "none", NULL, 0) < 0
        || syscall(SYS_fsconfig, fs, CSB_FSCONFIG_SET_STRING, "name", name, 0) < 0
        || syscall(SYS_fsconfig, fs, CSB_FSCONFIG_SET_FLAG, "favordynmods", NULL, 0) < 0
        || syscall(SYS_fsconfig, fs, CSB_FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
        int err = errno;
        close(fs);
        return -err;
    }
    return fs;
}
