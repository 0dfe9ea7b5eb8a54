/*
 * errno around every allocation function: a call that succeeds leaves errno exactly as it found
 * it, the very first call of the process (the one that starts the allocator) included; a call
 * that fails reports what glibc reports.
 *
 *   errno MODE FIRST     (MODE: glibc, smalloc or fallback; see check.h)
 *
 * FIRST names the function the program calls first, before anything else is allocated: malloc,
 * calloc, realloc, reallocarray, free, posix_memalign, aligned_alloc, memalign, valloc, pvalloc,
 * malloc_usable_size, free_sized, malloc_trim, mallinfo, mallinfo2, malloc_stats, mallopt or
 * malloc_info (free, realloc and malloc_usable_size are handed a block of glibc's own malloc,
 * which the allocator must sort out). With FIRST = malloc the program then checks every
 * function, in every path that makes system calls (big blocks, purges, threads, foreign
 * blocks); with another FIRST it checks one more malloc and free.
 *
 * errno is set to EDOM (a value no allocation function sets) before each call.
 *
 * Prints "ok errno FIRST" when every check passed; the first failed check prints its line and
 * exits with status 1.
 */
#include "check.h"

#include <pthread.h>

/* glibc's own allocator: blocks that did not come from the allocator under test. */
extern void *__libc_malloc(size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

#ifndef PREFIXED
/* C23's free_sized and free_aligned_sized: glibc 2.36 lacks them, so they are called only when
   the process has them (smalloc preloaded). */
extern void free_sized(void *, size_t) __attribute__((weak));
extern void free_aligned_sized(void *, size_t, size_t) __attribute__((weak));
#define HAVE_FREE_SIZED (free_sized != NULL)
#else
#define HAVE_FREE_SIZED 1
#endif

/* mallinfo is deprecated in glibc's header; it is one of the functions under test. */
static struct mallinfo call_mallinfo(void) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    return F(mallinfo)();
#pragma GCC diagnostic pop
}

/* Sizes the compiler cannot see through, so that no call is folded away. */
static volatile size_t huge = SIZE_MAX;

static size_t page;

/* Calls `expr` with errno set to EDOM and checks that errno is still EDOM afterwards. */
#define KEEPS(expr)                                                                        \
    do {                                                                                   \
        errno = EDOM;                                                                      \
        expr;                                                                              \
        int keeps_errno_ = errno;                                                          \
        CHECKF(keeps_errno_ == EDOM, "%s changed errno from EDOM (%d) to %d", #expr, EDOM, \
               keeps_errno_);                                                              \
    } while (0)

/* Calls `expr`, which must fail, with errno set to EDOM, and checks that it set errno to e. */
#define SETS(e, expr)                                                                     \
    do {                                                                                  \
        errno = EDOM;                                                                     \
        expr;                                                                             \
        int sets_errno_ = errno;                                                          \
        CHECKF(sets_errno_ == (e), "%s left errno %d, not %s (%d)", #expr, sets_errno_, #e, \
               (e));                                                                      \
    } while (0)

/* Whether the process has a mapping of 1 TiB or more: smalloc's reservation. */
static int has_reservation(void) {
    static char buf[1 << 20];
    int saved = errno;
    read_proc("/proc/self/maps", buf, sizeof buf);
    int found = 0;
    for (const char *line = buf; line && *line;) {
        unsigned long start, end;
        if (sscanf(line, "%lx-%lx", &start, &end) == 2 && end - start >= ((unsigned long)1 << 40))
            found = 1;
        line = strchr(line, '\n');
        if (line) line++;
    }
    errno = saved;
    return found;
}

/* A block of glibc's own malloc, for the functions that take a block. */
static void *foreign(size_t n) {
    int saved = errno;
    void *p = __libc_malloc(n);
    CHECK(p);
    memset(p, 0x3c, n);
    errno = saved;
    return p;
}

/* A stream for malloc_info that writes into a buffer. */
static FILE *info_stream(void) {
    static char buf[1 << 20];
    int saved = errno;
    FILE *f = fmemopen(buf, sizeof buf, "w");
    CHECK(f);
    errno = saved;
    return f;
}

/* The first call of the process, through `name`: must succeed and keep errno. */
static void first_call(const char *name) {
    void *p = NULL, *g;
    int r = -1;
    if (!strcmp(name, "malloc")) {
        KEEPS(p = F(malloc)(100));
        CHECK(p);
    } else if (!strcmp(name, "calloc")) {
        KEEPS(p = F(calloc)(10, 10));
        CHECK(p);
    } else if (!strcmp(name, "realloc")) {
        g = foreign(100);
        KEEPS(p = F(realloc)(g, 200));
        CHECK(p);
    } else if (!strcmp(name, "reallocarray")) {
        KEEPS(p = F(reallocarray)(NULL, 10, 10));
        CHECK(p);
    } else if (!strcmp(name, "free")) {
        g = foreign(100);
        KEEPS(F(free)(g));
    } else if (!strcmp(name, "posix_memalign")) {
        KEEPS(r = F(posix_memalign)(&p, 64, 100));
        CHECK(r == 0 && p);
    } else if (!strcmp(name, "aligned_alloc")) {
        KEEPS(p = F(aligned_alloc)(64, 128));
        CHECK(p);
    } else if (!strcmp(name, "memalign")) {
        KEEPS(p = F(memalign)(64, 100));
        CHECK(p);
    } else if (!strcmp(name, "valloc")) {
        KEEPS(p = F(valloc)(100));
        CHECK(p);
    } else if (!strcmp(name, "pvalloc")) {
        KEEPS(p = F(pvalloc)(100));
        CHECK(p);
    } else if (!strcmp(name, "malloc_usable_size")) {
        g = foreign(100);
        size_t us = 0;
        KEEPS(us = F(malloc_usable_size)(g));
        CHECKF(us >= 100, "malloc_usable_size of glibc's 100-byte block is %zu", us);
        __libc_free(g);
    } else if (!strcmp(name, "free_sized")) {
        if (!HAVE_FREE_SIZED) return;
        g = foreign(100);
        KEEPS(F(free_sized)(g, 100));
    } else if (!strcmp(name, "malloc_trim")) {
        KEEPS(r = F(malloc_trim)(0));
        CHECKF(r == 0 || r == 1, "malloc_trim returned %d", r);
    } else if (!strcmp(name, "mallinfo")) {
        KEEPS(call_mallinfo());
    } else if (!strcmp(name, "mallinfo2")) {
        KEEPS(F(mallinfo2)());
    } else if (!strcmp(name, "malloc_stats")) {
        KEEPS(F(malloc_stats)());
    } else if (!strcmp(name, "mallopt")) {
        KEEPS(r = F(mallopt)(M_TRIM_THRESHOLD, 128 * 1024));
        CHECKF(r == 0 || r == 1, "mallopt returned %d", r);
    } else if (!strcmp(name, "malloc_info")) {
        /* stderr: opening any other stream would allocate first. */
        KEEPS(r = F(malloc_info)(0, stderr));
        CHECKF(r == 0, "malloc_info(0, stderr) returned %d", r);
    } else {
        fprintf(stderr, "unknown function %s\n", name);
        exit(2);
    }
    KEEPS(F(free)(p));
}

/* ---------------------------------------------------------------------------------------- */

/* The sizes tried with each function: tiny to beyond the biggest slot (128 MiB). */
static const size_t sizes[] = {0, 1, 24, 1000, 4096, 100000, 1 << 20, 32 << 20, 128 << 20,
                               200 << 20};
#define NSIZES (sizeof sizes / sizeof *sizes)

static void successes(void) {
    void *p = NULL, *q = NULL;
    int r;
    size_t us;
    for (size_t i = 0; i < NSIZES; i++) {
        size_t n = sizes[i];
        KEEPS(p = F(malloc)(n));
        CHECKF(p, "malloc(%zu)", n);
        if (n) ((unsigned char *)p)[n - 1] = 1;
        KEEPS(us = F(malloc_usable_size)(p));
        CHECKF(us >= n, "usable size %zu of a %zu-byte block", us, n);
        KEEPS(F(free)(p));

        KEEPS(p = F(calloc)(n / 8 + 1, 8));
        CHECKF(p, "calloc(%zu, 8)", n / 8 + 1);
        KEEPS(F(free)(p));

        KEEPS(r = F(posix_memalign)(&p, 4096, n));
        CHECKF(r == 0, "posix_memalign(4096, %zu) returned %d", n, r);
        KEEPS(F(free)(p));

        KEEPS(p = F(aligned_alloc)(256, n));
        CHECKF(p, "aligned_alloc(256, %zu)", n);
        KEEPS(F(free)(p));

        KEEPS(p = F(memalign)(64, n));
        CHECKF(p, "memalign(64, %zu)", n);
        KEEPS(F(free)(p));

        KEEPS(p = F(valloc)(n));
        CHECKF(p, "valloc(%zu)", n);
        KEEPS(F(free)(p));

        KEEPS(p = F(pvalloc)(n));
        CHECKF(p, "pvalloc(%zu)", n);
        KEEPS(F(free)(p));

        if (HAVE_FREE_SIZED) {
            KEEPS(p = F(malloc)(n));
            CHECK(p);
            KEEPS(F(free_sized)(p, n));
            KEEPS(p = F(aligned_alloc)(4096, n));
            CHECK(p);
            KEEPS(F(free_aligned_sized)(p, 4096, n));
        }
    }
    KEEPS(us = F(malloc_usable_size)(NULL));
    CHECK(us == 0);
    KEEPS(F(free)(NULL));

    /* Alignments beyond the biggest slot: a mapping trimmed to the alignment. */
    KEEPS(r = F(posix_memalign)(&p, 256 << 20, 1000));
    CHECK(r == 0 && ((uintptr_t)p & ((256 << 20) - 1)) == 0);
    KEEPS(F(free)(p));
    KEEPS(p = F(memalign)(256 << 20, 1000));
    CHECK(p);
    KEEPS(F(free)(p));

    /* realloc up through every kind of block and back down. */
    static const size_t chain[] = {10, 100, 5000, 1 << 20, 40 << 20, 200 << 20, 300 << 20,
                                   150 << 20, 100 << 20, 100000, 100, 1};
    KEEPS(p = F(realloc)(NULL, 1));
    CHECK(p);
    for (size_t i = 0; i < sizeof chain / sizeof *chain; i++) {
        KEEPS(q = F(realloc)(p, chain[i]));
        CHECKF(q, "realloc to %zu", chain[i]);
        ((unsigned char *)q)[chain[i] - 1] = 2;
        p = q;
    }
    KEEPS(q = F(realloc)(p, 0)); /* frees p, returns NULL: a success */
    CHECK(q == NULL);
    KEEPS(p = F(reallocarray)(NULL, 100, 10));
    CHECK(p);
    KEEPS(q = F(reallocarray)(p, 1000, 1000));
    CHECK(q);
    KEEPS(F(free)(q));

    /* Blocks of glibc's malloc: measured, resized and freed by their owner. Page-aligned ones
       (the shape of smalloc's direct mappings) make the allocator look at the page before. */
    void *g = foreign(100);
    KEEPS(us = F(malloc_usable_size)(g));
    CHECK(us >= 100);
    KEEPS(g = F(realloc)(g, 10000));
    CHECK(g);
    KEEPS(F(free)(g));
    static const size_t foreign_aligned[] = {10000, 2 << 20};
    for (size_t i = 0; i < 2; i++) {
        int saved = errno;
        g = __libc_memalign(page, foreign_aligned[i]);
        CHECK(g);
        errno = saved;
        KEEPS(us = F(malloc_usable_size)(g));
        CHECK(us >= foreign_aligned[i]);
        KEEPS(g = F(realloc)(g, foreign_aligned[i] * 2));
        CHECK(g);
        KEEPS(F(free)(g));
    }

    /* The new entry points. */
    KEEPS(r = F(malloc_trim)(0));
    CHECKF(r == 0 || r == 1, "malloc_trim(0) returned %d", r);
    KEEPS(r = F(malloc_trim)(1 << 20));
    CHECKF(r == 0 || r == 1, "malloc_trim(1 MiB) returned %d", r);
    KEEPS(F(mallinfo2)());
    KEEPS(call_mallinfo());
    KEEPS(F(malloc_stats)());
    KEEPS(r = F(mallopt)(M_TRIM_THRESHOLD, 128 * 1024));
    CHECKF(r == 0 || r == 1, "mallopt(M_TRIM_THRESHOLD) returned %d", r);
    KEEPS(r = F(mallopt)(M_MMAP_THRESHOLD, 128 * 1024));
    CHECKF(r == 0 || r == 1, "mallopt(M_MMAP_THRESHOLD) returned %d", r);
    FILE *f = info_stream();
    KEEPS(r = F(malloc_info)(0, f));
    CHECKF(r == 0, "malloc_info(0, f) returned %d", r);
    fclose(f);
}

/* ---------------------------------------------------------------------------------------- */

static void failures(void) {
    void *p;
    int r;
    SETS(ENOMEM, p = F(malloc)(huge));
    CHECK(p == NULL);
    SETS(ENOMEM, p = F(malloc)(huge / 2 + 1)); /* PTRDIFF_MAX + 1 */
    CHECK(p == NULL);
    SETS(ENOMEM, p = F(calloc)(huge / 2 + 1, 2));
    CHECK(p == NULL);
    SETS(ENOMEM, p = F(reallocarray)(NULL, huge / 2 + 1, 2));
    CHECK(p == NULL);
    SETS(ENOMEM, p = F(valloc)(huge));
    CHECK(p == NULL);
    SETS(ENOMEM, p = F(pvalloc)(huge));
    CHECK(p == NULL);
    SETS(ENOMEM, p = F(memalign)(4096, huge));
    CHECK(p == NULL);
    SETS(EINVAL, p = F(memalign)(SIZE_MAX / 2 + 2, 8));
    CHECK(p == NULL);
    SETS(EINVAL, p = F(aligned_alloc)(SIZE_MAX / 2 + 2, 8));
    CHECK(p == NULL);

    /* A failed realloc leaves the block as it was. */
    unsigned char *b;
    KEEPS(b = F(malloc)(100));
    CHECK(b);
    memset(b, 0x77, 100);
    SETS(ENOMEM, p = F(realloc)(b, huge));
    CHECK(p == NULL && b[0] == 0x77 && b[99] == 0x77);
    SETS(ENOMEM, p = F(reallocarray)(b, huge, 2));
    CHECK(p == NULL && b[0] == 0x77 && b[99] == 0x77);

    /* posix_memalign reports through its result; glibc's may also leave ENOMEM in errno when
       the block cannot be had, and leaves errno alone for a bad alignment. */
    p = (void *)0x1234;
    KEEPS(r = F(posix_memalign)(&p, 24, 8));
    CHECK(r == EINVAL && p == (void *)0x1234);
    errno = EDOM;
    r = F(posix_memalign)(&p, 64, huge);
    CHECKF(r == ENOMEM && p == (void *)0x1234 && (errno == EDOM || errno == ENOMEM),
           "posix_memalign(64, SIZE_MAX) returned %d, errno %d", r, errno);

    /* malloc_info knows no options: glibc returns EINVAL (leaving errno alone); returning -1
       with errno EINVAL says the same. Nothing is written either way. */
    FILE *f = info_stream();
    long before = ftell(f);
    errno = EDOM;
    r = F(malloc_info)(1, f);
    CHECKF((r == EINVAL && errno == EDOM) || (r == -1 && errno == EINVAL),
           "malloc_info(1, f) returned %d, errno %d", r, errno);
    CHECK(ftell(f) == before);
    fclose(f);

    /* In fallback mode the address-space limit (about 3.8 GiB) refuses a 4 GiB block. */
    if (mode == FALLBACK) {
        SETS(ENOMEM, p = F(malloc)(4 * GIB));
        CHECK(p == NULL);
        SETS(ENOMEM, p = F(realloc)(b, 4 * GIB));
        CHECK(p == NULL && b[0] == 0x77 && b[99] == 0x77);
    }
    KEEPS(F(free)(b));
}

/* ---------------------------------------------------------------------------------------- */

/* Many small blocks, touched and freed: past what the allocator keeps, freeing gives pages back
   (madvise); after a pause, old free memory is given back on the next allocations. */
static void purges(int pause) {
    enum { N = 16384 }; /* 64 MiB of 4 KiB blocks */
    static unsigned char *blocks[N];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            KEEPS(blocks[i] = F(malloc)(4096));
            CHECK(blocks[i]);
            memset(blocks[i], i, 4096);
        }
        for (int i = 0; i < N; i++) KEEPS(F(free)(blocks[i]));
        if (pause) usleep(1100 * 1000);
    }
}

/* A new thread's first call, and frees of another thread's blocks. */
static void *thread_main(void *arg) {
    void *p;
    KEEPS(p = F(malloc)(100));
    CHECK(p);
    KEEPS(F(free)(arg));
    KEEPS(F(free)(p));
    void **blocks = F(malloc)(1000 * sizeof *blocks);
    CHECK(blocks);
    for (int i = 0; i < 1000; i++) KEEPS(blocks[i] = F(malloc)(64 + i));
    return blocks;
}

static void threads(void) {
    for (int i = 0; i < 4; i++) {
        void *mine;
        KEEPS(mine = F(malloc)(5000));
        CHECK(mine);
        pthread_t t;
        CHECK(pthread_create(&t, NULL, thread_main, mine) == 0);
        void *ret;
        CHECK(pthread_join(t, &ret) == 0);
        void **blocks = ret;
        for (int j = 0; j < 1000; j++) KEEPS(F(free)(blocks[j]));
        KEEPS(F(free)(blocks));
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s glibc|smalloc|fallback FIRST\n", argv[0]);
        return 2;
    }
    set_mode(argv[1]);
    page = (size_t)sysconf(_SC_PAGESIZE);
    /* Nothing has started smalloc yet (its reservation is a mapping of 32 TiB). */
    CHECKF(!has_reservation(), "smalloc was started before main");
    first_call(argv[2]);
    void *p;
    KEEPS(p = F(malloc)(10));
    CHECK(p);
    KEEPS(F(free)(p));
    if (!strcmp(argv[2], "malloc")) {
        successes();
        failures();
        purges(mode == SMALLOC);
        threads();
    }
    /* In smalloc mode, smalloc served the calls (and in the others it did not reserve). */
    CHECKF(has_reservation() == (mode == SMALLOC), "smalloc's reservation %s",
           has_reservation() ? "exists" : "does not exist");
    printf("ok errno %s\n", argv[2]);
    return 0;
}
