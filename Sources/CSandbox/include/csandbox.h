#ifndef CSANDBOX_H
#define CSANDBOX_H

#include <sys/types.h>

/// One descriptor the child gets: `source` in the parent becomes `target` in the child.
struct csandbox_fd {
    int source;
    int target;
};

/// The namespace flags (sched.h shows them only under _GNU_SOURCE, which Swift's Glibc lacks).
enum csandbox_namespace {
    CSANDBOX_NEWNS = 0x00020000,
    CSANDBOX_NEWUTS = 0x04000000,
    CSANDBOX_NEWIPC = 0x08000000,
    CSANDBOX_NEWUSER = 0x10000000,
    CSANDBOX_NEWPID = 0x20000000,
    CSANDBOX_NEWNET = 0x40000000,
};

/// One step of the child's mount plan, carried out in order in its new mount namespace.
enum csandbox_mount_kind {
    CSANDBOX_MOUNT_PRIVATE = 1,     /* make every mount private, so nothing propagates out */
    CSANDBOX_MOUNT_CLONE,           /* detach a copy of `source` (recursive) into `slot`, for later */
    CSANDBOX_MOUNT_READONLY_TREE,   /* `target` and every mount below it: read-only, nosuid */
    CSANDBOX_MOUNT_TMPFS,           /* a tmpfs on `target` with options `data` and `flags` */
    CSANDBOX_MOUNT_MKDIR,           /* mkdir `target` (an existing one is fine) */
    CSANDBOX_MOUNT_TOUCH,           /* create the empty file `target` */
    CSANDBOX_MOUNT_ATTACH,          /* attach the copy in `slot` at `target` */
    CSANDBOX_MOUNT_BIND_READONLY,   /* bind `target` over itself, read-only; skipped when missing */
    CSANDBOX_MOUNT_BIND_FILE,       /* bind `source` over the file `target`; skipped when missing */
    CSANDBOX_MOUNT_PROC,            /* a new read-only proc on `target` (the child is in a new pid namespace) */
    CSANDBOX_MOUNT_DEVPTS,          /* a new devpts instance on `target` */
    CSANDBOX_MOUNT_SYMLINK,         /* symlink `target` -> `source` */
    CSANDBOX_MOUNT_HARDEN_SLOT,     /* the copy in `slot`, recursively: nosuid, nodev, and (when `flags` is 1 and
                                       an idmap user namespace is given) idmapped through it */
    CSANDBOX_MOUNT_CHOWN,           /* chown `target` to uid `flags >> 32`, gid `flags & 0xffffffff` */
    CSANDBOX_MOUNT_CLONE_BENEATH,   /* like CLONE, of the folder `data` beneath the folder `source`, through no
                                       symlink: a folder in the workspace, which commands can change */
    CSANDBOX_MOUNT_NEW_ROOT,        /* a new root on a tmpfs at `target` (an existing folder, whose host contents are
                                       left out), holding a recursive bind of every other entry of /; then each line of
                                       `data` (relative): "+P" makes /P a tmpfs with binds of its host entries, any other
                                       line is made as a folder (mount points the host lacks); then pivot */
};

struct csandbox_mount {
    int kind;
    const char *source;
    const char *target;
    const char *data;
    unsigned long flags;
    int slot;
};

struct csandbox_rlimit {
    int resource;
    unsigned long long value;
};

/// How to confine the child. Every pointer is owned by the parent and stays valid during spawn.
struct csandbox_confinement {
    int clone_flags;                 /* CLONE_NEW* namespaces to create */
    int netns_fd;                    /* a network namespace to join, or -1 */
    int mntns_fd;                    /* a prepared mount namespace to copy (setns, then unshare), or -1;
                                        `mounts` then only adds what is per call (/proc) */
    int userns_fd;                   /* a user namespace to join after the mounts (toolhost as root: its
                                        root maps to an unprivileged host uid), or -1 */
    int idmap_userns_fd;             /* the user namespace whose mapping idmaps the workspace, or -1 */
    const char *uid_map;             /* with CLONE_NEWUSER: one line mapping the caller's uid */
    const char *gid_map;
    const char *hostname;            /* set in the new UTS namespace, or NULL */
    int loopback_up;                 /* bring `lo` up (in a network namespace of the child's own) */
    int cgroup_procs_fds[2];         /* cgroup.procs of cgroups to join first (pids, memory), or -1 */
    const struct csandbox_mount *mounts;
    int mount_count;
    const struct csandbox_rlimit *rlimits;
    int rlimit_count;
    const void *filter;              /* struct sock_filter[], exported by libseccomp in the parent */
    unsigned short filter_len;
};

/// Everything the child needs, prepared by the parent: nothing is allocated after clone.
struct csandbox_spawn_args {
    const char *path;           /* absolute path of the program */
    char *const *argv;          /* NULL-terminated */
    char *const *envp;          /* NULL-terminated; the complete environment */
    const char *cwd;            /* directory to start in (after the mounts) */
    const struct csandbox_fd *fds;  /* descriptors to map; every other one is closed */
    int fd_count;
    const struct csandbox_confinement *confinement;  /* NULL: no confinement */
};

/// The steps a child can fail at, reported with the errno.
enum csandbox_step {
    CSANDBOX_STEP_SETUP = 1, CSANDBOX_STEP_CGROUP, CSANDBOX_STEP_USERNS, CSANDBOX_STEP_NETNS,
    CSANDBOX_STEP_LOOPBACK, CSANDBOX_STEP_HOSTNAME, CSANDBOX_STEP_MOUNT, CSANDBOX_STEP_JOIN_USERNS, CSANDBOX_STEP_RLIMIT,
    CSANDBOX_STEP_FDS, CSANDBOX_STEP_CHDIR, CSANDBOX_STEP_CAPS, CSANDBOX_STEP_NO_NEW_PRIVS,
    CSANDBOX_STEP_SECCOMP, CSANDBOX_STEP_EXEC,
};

/// Clones and execs `args->path` in a new session (so it leads its own process group), confined
/// as `args->confinement` says. Returns 0 and stores the child's pid, or an errno and stores the
/// step that failed (and, for a mount, the index of the mount step).
int csandbox_spawn(const struct csandbox_spawn_args *args, pid_t *pid_out, int *step_out, int *detail_out);

/// Makes a close-on-exec pipe (pipe2 is not visible to Swift through Glibc). Returns 0 or an errno.
int csandbox_pipe(int fds[2]);

/// Raises (or lowers) the calling thread's scheduling priority alone: setpriority on its thread id,
/// which Swift cannot get (gettid is not visible through Glibc). Returns 0 or an errno.
int csandbox_thread_nice(int nice);

/// Creates a network namespace for the calling thread with `lo` up and returns a descriptor that
/// keeps it alive (or -errno). Call it on a thread of its own that ends afterwards.
int csandbox_new_netns(void);

/// Joins the network namespace `netns_fd` and listens on 127.0.0.1:`port` there; returns the
/// listening socket (or -errno). The socket stays in that namespace wherever it is used from, so
/// the host can accept the namespace's connections. Call it on a thread of its own that ends afterwards.
int csandbox_listen_in_netns(int netns_fd, unsigned short port);

/// Blocks every signal on the calling thread, then moves it, and only it, into the mount namespace `mntns_fd` (a file system of its
/// own first, so the process's other threads keep theirs) and makes it `uid`/`gid` with no
/// supplementary groups and no capabilities, by raw system calls that change this thread's
/// credentials alone (glibc's wrappers would change every thread's). Last, a seccomp filter on this
/// thread alone refuses (EPERM) every way to start a thread or process, which would inherit the
/// view and the uid, and every change of namespace, mount or credential: the thread keeps this
/// view until it ends, and nothing else gets it. Returns 0 or -errno.
int csandbox_enter_view(int mntns_fd, unsigned int uid, unsigned int gid);

/// 1 on a thread that `csandbox_enter_view` moved into a view, else 0.
int csandbox_thread_in_view(void);

/// Creates the cgroup v1 hierarchy `name`, of no controller, with the favordynmods option, and
/// mounts it nowhere: the returned file-system context (or -errno) holds it for as long as it is
/// open. While a hierarchy favors dynamic changes, a write to any cgroup.procs stops waiting for
/// an RCU grace period (from Linux 6.18 on, the kernel keeps that until reboot). Needs
/// CAP_SYS_ADMIN; a hierarchy of that name made earlier is shared, not made twice.
int csandbox_favor_cgroup_moves(const char *name);

/// 0 when the kernel has seccomp filtering, else an errno.
int csandbox_seccomp_available(void);

/// openat2's resolve flags (linux/openat2.h is not visible to Swift).
enum csandbox_resolve {
    CSANDBOX_RESOLVE_NO_MAGICLINKS = 0x02,
    CSANDBOX_RESOLVE_NO_SYMLINKS = 0x04,
    CSANDBOX_RESOLVE_BENEATH = 0x08,
};

/// O_PATH (fcntl.h shows it only under _GNU_SOURCE).
enum { CSANDBOX_O_PATH = 010000000 };

/// openat2(2) by number (glibc 2.36 has no wrapper). Returns a descriptor, or -errno (-ENOSYS on
/// kernels before 5.6).
int csandbox_openat2(int dirfd, const char *path, int flags, unsigned int mode, unsigned long long resolve);

/// Decodes a wait status: returns the exit code, or -1 and stores the signal number.
int csandbox_exit_code(int status, int *signal_out);

#endif
