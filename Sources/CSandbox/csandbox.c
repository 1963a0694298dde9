#include "csandbox.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
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
/* The child's stack until execve. */
#define CSANDBOX_CHILD_STACK (256 * 1024)

static void child_fail(int err_fd, int err) {
    ssize_t ignored = write(err_fd, &err, sizeof err);
    (void)ignored;
    _exit(127);
}

/* What the child needs; it lives on the parent's stack, which the child shares (CLONE_VM). */
struct child_context {
    const struct csandbox_spawn_args *args;
    int err_fd;
};

/* Runs in the child between clone and execve, on its own stack in the parent's memory: only
 * async-signal-safe calls, no allocation, and no writes to anything but its own locals. */
static int child_main(void *opaque) {
    const struct child_context *context = opaque;
    const struct csandbox_spawn_args *args = context->args;
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
    return 127;
}

int csandbox_spawn(const struct csandbox_spawn_args *args, pid_t *pid_out) {
    int err_pipe[2];
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
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    struct child_context context = { args, err_pipe[1] };
    pid_t pid = clone(child_main, (char *)stack + stack_size, CLONE_VM | CLONE_VFORK | SIGCHLD, &context);
    int clone_errno = errno;
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    munmap(stack, stack_size);
    close(err_pipe[1]);
    if (pid < 0) {
        close(err_pipe[0]);
        return clone_errno;
    }

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
