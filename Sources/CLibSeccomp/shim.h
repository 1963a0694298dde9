#ifndef CLIBSECCOMP_SHIM_H
#define CLIBSECCOMP_SHIM_H

#include <seccomp.h>
#include <sys/mman.h>
#include <unistd.h>

/* Function-like macros are not imported into Swift: these stand in for them. */
static inline uint32_t clibseccomp_act_errno(uint16_t err) { return SCMP_ACT_ERRNO(err); }
static inline uint32_t clibseccomp_act_allow(void) { return SCMP_ACT_ALLOW; }
static inline uint32_t clibseccomp_act_kill_process(void) { return SCMP_ACT_KILL_PROCESS; }
static inline uint32_t clibseccomp_act_kill_thread(void) { return SCMP_ACT_KILL_THREAD; }
static inline uint32_t clibseccomp_act_trap(void) { return SCMP_ACT_TRAP; }
static inline uint32_t clibseccomp_act_log(void) { return SCMP_ACT_LOG; }

/* An anonymous file for seccomp_export_bpf (libseccomp 2.5 exports only to a descriptor).
 * Declared here: glibc shows memfd_create only under _GNU_SOURCE. */
int memfd_create(const char *name, unsigned int flags);
static inline int clibseccomp_memfd(void) { return memfd_create("toolhost-bpf", 1U /* MFD_CLOEXEC */); }

#endif
