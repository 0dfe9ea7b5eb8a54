/*
 * Shared by the C test programs lifetime.c, errno.c and stats.c: the mode a program runs in,
 * the names it calls, a check that stops the program at the first failure, and the process's
 * memory figures read without allocating.
 *
 * Built with -DPREFIXED, a program calls smalloc_malloc() and friends from smalloc.h instead of
 * the standard names.
 */
#ifndef SMALLOC_TEST_CHECK_H
#define SMALLOC_TEST_CHECK_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef PREFIXED
#include "smalloc.h"
#define F(name) smalloc_##name
#define API "smalloc_"
#else
#define F(name) name
#define API ""
#endif

/* Who is expected to serve the calls:
 *   glibc     no smalloc at all (the reference: checks the test itself against glibc);
 *   smalloc   smalloc, preloaded or linked;
 *   fallback  smalloc is loaded but the OS refused its reservation (an address-space limit),
 *             so glibc's malloc serves every block through it. */
enum mode { GLIBC, SMALLOC, FALLBACK };
static enum mode mode;

static const char *const mode_names[] = {"glibc", "smalloc", "fallback"};

/* Sets `mode` from its name; exits with status 2 on an unknown one. */
static inline void set_mode(const char *name) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, mode_names[i])) {
            mode = (enum mode)i;
            return;
        }
    fprintf(stderr, "unknown mode %s\n", name);
    exit(2);
}

/* Stops the program with status 1, saying where and what, when `cond` is false. errno is shown
   as it was when the check ran. */
#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            int check_errno_ = errno;                                                    \
            fprintf(stderr, "%s:%d: check failed: %s (errno %d)\n", __FILE__, __LINE__, \
                    #cond, check_errno_);                                                \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

/* As CHECK, with a message (printf format) that gives the figures involved. */
#define CHECKF(cond, ...)                                                                \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            int check_errno_ = errno;                                                    \
            fprintf(stderr, "%s:%d: check failed: %s (errno %d): ", __FILE__, __LINE__, \
                    #cond, check_errno_);                                                \
            fprintf(stderr, __VA_ARGS__);                                                \
            fputc('\n', stderr);                                                         \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

#define KIB ((size_t)1 << 10)
#define MIB ((size_t)1 << 20)
#define GIB ((size_t)1 << 30)

/* Reads a whole /proc file into buf (NUL-terminated) with plain system calls: no stdio, so no
   allocation, which would change the figures being measured. */
static inline void read_proc(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    size_t len = 0;
    for (;;) {
        CHECK(len + 1 < cap);
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR) continue;
        CHECK(n >= 0);
        if (n == 0) break;
        len += (size_t)n;
    }
    buf[len] = 0;
    close(fd);
}

/* A "Name:   123 kB" line of /proc/self/status, in bytes. errno is left as it was. */
static inline size_t proc_status(const char *name) {
    static char buf[16384];
    int saved = errno;
    read_proc("/proc/self/status", buf, sizeof buf);
    size_t n = strlen(name);
    for (const char *line = buf; line;) {
        if (!strncmp(line, name, n) && line[n] == ':') {
            size_t kb = strtoull(line + n + 1, NULL, 10);
            errno = saved;
            return kb * KIB;
        }
        line = strchr(line, '\n');
        if (line) line++;
    }
    fprintf(stderr, "no %s in /proc/self/status\n", name);
    exit(1);
}

/* Address space and resident set of this process, in bytes. */
static inline size_t vm_size(void) { return proc_status("VmSize"); }
static inline size_t vm_rss(void) { return proc_status("VmRSS"); }

/* MiB, for messages. */
static inline double mib(size_t n) { return (double)n / (double)MIB; }

#endif /* SMALLOC_TEST_CHECK_H */
