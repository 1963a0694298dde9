#include "csandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Descriptors at or above this are scratch space for shuffling fds in the child. */
#define CSANDBOX_SCRATCH_FD 1000

static void child_fail(int err_fd, int err) {
    ssize_t ignored = write(err_fd, &err, sizeof err);
    (void)ignored;
    _exit(127);
}

/* Runs in the child between fork and execve: async-signal-safe calls only. */
static void child_exec(const struct csandbox_spawn_args *args, int err_fd) {
    /* The error pipe must not sit where a mapped target goes. */
    int safe_err = fcntl(err_fd, F_DUPFD_CLOEXEC, CSANDBOX_SCRATCH_FD);
    if (safe_err >= 0) err_fd = safe_err;
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        sigaction(sig, &dfl, NULL);  /* fails harmlessly for SIGKILL, SIGSTOP and the RT gaps */
    }

    if (setsid() < 0) child_fail(err_fd, errno);

    /* Move every source out of the way first, so a target never clobbers a later source. */
    int moved[64];
    if (args->fd_count > 64) child_fail(err_fd, EMFILE);
    for (int i = 0; i < args->fd_count; i++) {
        moved[i] = fcntl(args->fds[i].source, F_DUPFD_CLOEXEC, CSANDBOX_SCRATCH_FD);
        if (moved[i] < 0) child_fail(err_fd, errno);
    }
    int highest = 2;
    for (int i = 0; i < args->fd_count; i++) {
        if (dup2(moved[i], args->fds[i].target) < 0) child_fail(err_fd, errno);
        if (args->fds[i].target > highest) highest = args->fds[i].target;
    }
    /* Everything above the mapped descriptors closes at exec, the error pipe included. */
    if (syscall(SYS_close_range, (unsigned)highest + 1, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
        for (int fd = highest + 1; fd < 65536; fd++) {
            if (fd != err_fd) fcntl(fd, F_SETFD, FD_CLOEXEC);
        }
    }

    if (chdir(args->cwd) < 0) child_fail(err_fd, errno);
    execve(args->path, args->argv, args->envp);
    child_fail(err_fd, errno);
}

int csandbox_spawn(const struct csandbox_spawn_args *args, pid_t *pid_out) {
    int err_pipe[2];
    if (pipe2(err_pipe, O_CLOEXEC) < 0) return errno;

    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(err_pipe[0]);
        close(err_pipe[1]);
        return err;
    }
    if (pid == 0) {
        close(err_pipe[0]);
        child_exec(args, err_pipe[1]);
    }

    close(err_pipe[1]);
    int child_errno = 0;
    ssize_t n;
    do {
        n = read(err_pipe[0], &child_errno, sizeof child_errno);
    } while (n < 0 && errno == EINTR);
    close(err_pipe[0]);
    if (n == (ssize_t)sizeof child_errno) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        return child_errno;
    }
    *pid_out = pid;
    return 0;
}

int csandbox_exit_code(int status, int *signal_out) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    *signal_out = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    return -1;
}

int csandbox_pipe(int fds[2]) {
    return pipe2(fds, O_CLOEXEC) == 0 ? 0 : errno;
}
