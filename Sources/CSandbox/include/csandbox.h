#ifndef CSANDBOX_H
#define CSANDBOX_H

#include <sys/types.h>

/// One descriptor the child gets: `source` in the parent becomes `target` in the child.
struct csandbox_fd {
    int source;
    int target;
};

/// Everything the child needs, prepared by the parent: nothing is allocated after fork.
struct csandbox_spawn_args {
    const char *path;           /* absolute path of the program */
    char *const *argv;          /* NULL-terminated */
    char *const *envp;          /* NULL-terminated; the complete environment */
    const char *cwd;            /* directory to start in */
    const struct csandbox_fd *fds;  /* descriptors to map; every other one is closed */
    int fd_count;
};

/// Forks and execs `args->path` in a new session (so it leads its own process group).
/// Returns 0 and stores the child's pid, or an errno: the child's exec failure reaches
/// the parent through a close-on-exec pipe.
int csandbox_spawn(const struct csandbox_spawn_args *args, pid_t *pid_out);

/// Makes a close-on-exec pipe (pipe2 is not visible to Swift through Glibc). Returns 0 or an errno.
int csandbox_pipe(int fds[2]);

/// Decodes a wait status: returns the exit code, or -1 and stores the signal number.
int csandbox_exit_code(int status, int *signal_out);

#endif
