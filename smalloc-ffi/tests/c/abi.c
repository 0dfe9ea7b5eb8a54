/*
 * Checks the C allocation functions of libsmalloc against glibc's semantics.
 *
 *   abi MODE SECTION [ARG]
 *
 * MODE says who is expected to serve the calls:
 *   glibc     no smalloc at all: only what glibc guarantees is checked (this validates the test
 *             itself against the reference implementation);
 *   smalloc   smalloc (preloaded, or linked): glibc's guarantees plus smalloc's own (usable size
 *             is the whole power-of-two slot, loader blocks are recognized, ...);
 *   fallback  smalloc is loaded but its reservation was refused, so glibc serves everything
 *             through it.
 *
 * Built with -DPREFIXED, the program calls smalloc_malloc() and friends from smalloc.h instead
 * of the standard names.
 *
 * Each SECTION prints "ok SECTION" when all its checks pass; the first failed check prints its
 * line and exits with status 1.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef PREFIXED
#include "smalloc.h"
#define F(name) smalloc_##name
#else
#define F(name) name
#endif

/* glibc's own allocator, for blocks that did not come from smalloc. */
extern void *__libc_malloc(size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

enum mode { GLIBC, SMALLOC, FALLBACK };
static enum mode mode;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: check failed: %s (errno %d)\n", __FILE__, __LINE__, \
                    #cond, errno);                                                       \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

/* Sizes the compiler cannot see through, so that no call is folded away. */
static volatile size_t huge = SIZE_MAX;

static size_t page;

/* A small deterministic generator (xorshift), one state per thread. */
static uint64_t next_rand(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* The byte a block is filled with: depends on its address and a tag. */
static unsigned char tag_byte(const void *p, uint64_t tag) {
    uintptr_t a = (uintptr_t)p;
    return (unsigned char)((a >> 4) ^ (a >> 12) ^ tag ^ 0x5a);
}

static void fill(void *p, size_t n, unsigned char b) { memset(p, b, n); }

/* Whether all n bytes at p are b. */
static int all_are(const void *p, size_t n, unsigned char b) {
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i] != b) return 0;
    return 1;
}

/* For blocks too big to check byte by byte: checks the ends and a sample in between. */
static int sampled_are(const void *p, size_t n, unsigned char b) {
    const unsigned char *c = p;
    if (n <= 8192) return all_are(p, n, b);
    if (!all_are(c, 4096, b) || !all_are(c + n - 4096, 4096, b)) return 0;
    for (size_t i = 4096; i < n - 4096; i += 4093)
        if (c[i] != b) return 0;
    return 1;
}

static size_t next_pow2(size_t n) {
    size_t p = 1;
    while (p < n) p <<= 1;
    return p;
}

/* The usable size smalloc gives a request: its slot. Slots are powers of two and, between two
   of them, three quarters of the upper one (48, 96, 192, ...); every block is aligned to 16, so
   the smallest three-quarter slot that can serve is 48 (24 is aligned to 8 only). */
static size_t slot_size(size_t n) {
    size_t p = next_pow2(n < 16 ? 16 : n);
    return (p >= 64 && n <= p / 4 * 3) ? p / 4 * 3 : p;
}

static int aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

/* ---------------------------------------------------------------------------------------- */

static void section_basic(void) {
    /* malloc(0): unique, non-null, freeable. */
    void *z1 = F(malloc)(0), *z2 = F(malloc)(0);
    CHECK(z1 && z2 && z1 != z2);
    F(free)(z1);
    F(free)(z2);
    F(free)(NULL);

    /* Who serves: smalloc rounds 24 bytes up to a 32-byte slot, glibc gives 24. */
    void *probe = F(malloc)(24);
    CHECK(probe);
    if (mode == SMALLOC) CHECK(F(malloc_usable_size)(probe) == 32);
    if (mode != SMALLOC) CHECK(F(malloc_usable_size)(probe) == 24);
    F(free)(probe);

    static const size_t sizes[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 48, 63, 64,
                                   65, 100, 127, 128, 129, 255, 256, 500, 1000, 4095, 4096,
                                   4097, 10000, 65536, 100000, 1 << 20, (1 << 20) + 1, 3 << 20,
                                   5 << 20, 17 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t n = sizes[i];
        unsigned char *p = F(malloc)(n);
        CHECK(p);
        CHECK(aligned(p, 16));
        size_t us = F(malloc_usable_size)(p);
        CHECK(us >= n);
        if (mode == SMALLOC) CHECK(us == slot_size(n));
        fill(p, us, tag_byte(p, n));
        CHECK(sampled_are(p, us, tag_byte(p, n)));
        F(free)(p);
    }

    /* Many live blocks at once, freed in a shuffled order: every block keeps its bytes. */
    enum { N = 100000 };
    unsigned char **blocks = F(malloc)(N * sizeof *blocks);
    size_t *lens = F(malloc)(N * sizeof *lens);
    CHECK(blocks && lens);
    uint64_t rng = 12345;
    for (size_t i = 0; i < N; i++) {
        lens[i] = 1 + next_rand(&rng) % 300;
        blocks[i] = F(malloc)(lens[i]);
        CHECK(blocks[i]);
        fill(blocks[i], lens[i], tag_byte(blocks[i], i));
    }
    for (size_t i = N - 1; i > 0; i--) {
        size_t j = next_rand(&rng) % (i + 1);
        unsigned char *tb = blocks[i];
        blocks[i] = blocks[j];
        blocks[j] = tb;
        size_t tl = lens[i];
        lens[i] = lens[j];
        lens[j] = tl;
    }
    for (size_t i = 0; i < N; i++) {
        /* The tag was the original index, lost in the shuffle: check uniformity instead. */
        CHECK(all_are(blocks[i], lens[i], blocks[i][0]));
        F(free)(blocks[i]);
    }
    F(free)(blocks);
    F(free)(lens);
}

static void section_errno(void) {
    void *p;
    errno = 0;
    CHECK(F(malloc)(huge) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(F(malloc)(huge / 2) == NULL && errno == ENOMEM); /* PTRDIFF_MAX */
    errno = 0;
    CHECK(F(malloc)((huge >> 19) + 1) == NULL && errno == ENOMEM); /* 32 TiB */
    errno = 0;
    CHECK(F(calloc)(huge / 2 + 1, 2) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(F(calloc)((huge >> 30) + 1, (huge >> 30) + 1) == NULL && errno == ENOMEM);

    /* A failed realloc leaves the block as it was. */
    unsigned char *b = F(malloc)(100);
    CHECK(b);
    fill(b, 100, 0x77);
    errno = 0;
    CHECK(F(realloc)(b, huge) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(F(realloc)(b, huge / 2) == NULL && errno == ENOMEM);
    CHECK(all_are(b, 100, 0x77));
    errno = 0;
    CHECK(F(reallocarray)(b, huge, 2) == NULL && errno == ENOMEM);
    CHECK(all_are(b, 100, 0x77));
    unsigned char *c = F(reallocarray)(b, 50, 4);
    CHECK(c && all_are(c, 100, 0x77));
    F(free)(c);

    /* posix_memalign: EINVAL for bad alignments, ENOMEM when too big; *memptr untouched. */
    static const size_t bad[] = {0, 1, 2, 4, 12, 24, 40, 48, 3, 4097, (SIZE_MAX / 2) + 9};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        p = (void *)0x1234;
        CHECK(F(posix_memalign)(&p, bad[i], 8) == EINVAL);
        CHECK(p == (void *)0x1234);
    }
    p = (void *)0x1234;
    CHECK(F(posix_memalign)(&p, 64, huge) == ENOMEM);
    CHECK(p == (void *)0x1234);
    CHECK(F(posix_memalign)(&p, 64, huge / 2) == ENOMEM);
    CHECK(p == (void *)0x1234);

    /* memalign: EINVAL only when no power of two is big enough. */
    errno = 0;
    CHECK(F(memalign)(SIZE_MAX / 2 + 2, 8) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(F(aligned_alloc)(SIZE_MAX / 2 + 2, 8) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(F(memalign)(4096, huge) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(F(valloc)(huge) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(F(pvalloc)(huge) == NULL && errno == ENOMEM);

    /* free leaves errno alone, big blocks (returned to the OS) included. */
    static const size_t keep[] = {10, 5000, 5 << 20, 40 << 20};
    for (size_t i = 0; i < sizeof keep / sizeof *keep; i++) {
        void *q = F(malloc)(keep[i]);
        CHECK(q);
        fill(q, keep[i], 1);
        errno = ERANGE;
        F(free)(q);
        CHECK(errno == ERANGE);
    }
}

static void section_calloc(void) {
    void *a = F(calloc)(0, 5), *b = F(calloc)(5, 0);
    CHECK(a && b && a != b);
    F(free)(a);
    F(free)(b);

    /* Reused memory comes back zeroed: dirty a block, free it, calloc the same size. */
    static const size_t sizes[] = {1, 8, 24, 100, 1000, 5000, 70000, 1 << 20, 5 << 20};
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            size_t n = sizes[i];
            unsigned char *p = F(malloc)(n);
            CHECK(p);
            fill(p, F(malloc_usable_size)(p), 0xab);
            F(free)(p);
            unsigned char *q = F(calloc)(1, n);
            CHECK(q && all_are(q, n, 0));
            fill(q, n, 0xcd);
            F(free)(q);
            q = F(calloc)(n, 1);
            CHECK(q && all_are(q, n, 0));
            F(free)(q);
        }
    }
    unsigned char *big = F(calloc)(1000, 1000);
    CHECK(big && all_are(big, 1000000, 0));
    F(free)(big);
}

static void section_realloc(void) {
    /* realloc(NULL, n) is malloc(n). */
    unsigned char *p = F(realloc)(NULL, 100);
    CHECK(p);
    F(free)(p);
    p = F(realloc)(NULL, 0);
    CHECK(p);
    F(free)(p);

    /* Growing step by step keeps the contents; so does shrinking. */
    size_t n = 1;
    p = F(malloc)(n);
    CHECK(p);
    p[0] = 1;
    while (n < (12 << 20)) {
        size_t m = n + n / 2 + 1;
        unsigned char *q = F(realloc)(p, m);
        CHECK(q);
        for (size_t i = 0; i < n; i += (n > 65536 ? 509 : 1)) CHECK(q[i] == (unsigned char)(i * 7 + 1));
        for (size_t i = n; i < m; i++) q[i] = (unsigned char)(i * 7 + 1);
        p = q;
        n = m;
    }
    while (n > 1) {
        size_t m = n / 3;
        if (m == 0) m = 1;
        unsigned char *q = F(realloc)(p, m);
        CHECK(q);
        for (size_t i = 0; i < m; i += (m > 65536 ? 509 : 1)) CHECK(q[i] == (unsigned char)(i * 7 + 1));
        p = q;
        n = m;
    }
    /* realloc(p, 0) frees p and returns null. */
    CHECK(F(realloc)(p, 0) == NULL);

    /* Every usable byte survives a move, not only the requested ones. */
    for (size_t size = 1; size < (1 << 22); size = size * 3 + 1) {
        unsigned char *b = F(malloc)(size);
        CHECK(b);
        size_t us = F(malloc_usable_size)(b);
        fill(b, us, 0x3c);
        unsigned char *c = F(realloc)(b, us * 4 + 1);
        CHECK(c);
        CHECK(sampled_are(c, us, 0x3c));
        F(free)(c);
    }

    /* Same size, and a small shrink, keep the data too. */
    unsigned char *s = F(malloc)(1000);
    CHECK(s);
    fill(s, 1000, 9);
    s = F(realloc)(s, 1000);
    CHECK(s && all_are(s, 1000, 9));
    s = F(realloc)(s, 900);
    CHECK(s && all_are(s, 900, 9));
    s = F(realloc)(s, 10);
    CHECK(s && all_are(s, 10, 9));
    F(free)(s);

    /* A memalign'd block can be resized like any other. */
    unsigned char *al = F(memalign)(4096, 100);
    CHECK(al && aligned(al, 4096));
    fill(al, 100, 0x42);
    al = F(realloc)(al, 100000);
    CHECK(al && all_are(al, 100, 0x42));
    F(free)(al);
}

static void section_align(void) {
    for (size_t a = 8; a <= (2 << 20); a <<= 1) {
        const size_t sizes[] = {1, a / 2 + 1, a, a + 1, 3 * a};
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            size_t n = sizes[i];
            void *p = NULL;
            CHECK(F(posix_memalign)(&p, a, n) == 0);
            CHECK(p && aligned(p, a) && aligned(p, 16));
            CHECK(F(malloc_usable_size)(p) >= n);
            fill(p, n, 0x11);
            F(free)(p);

            p = F(aligned_alloc)(a, n); /* n need not be a multiple of a */
            CHECK(p && aligned(p, a));
            CHECK(F(malloc_usable_size)(p) >= n);
            fill(p, n, 0x22);
            F(free)(p);

            p = F(memalign)(a, n);
            CHECK(p && aligned(p, a));
            CHECK(F(malloc_usable_size)(p) >= n);
            fill(p, n, 0x33);
            F(free)(p);
        }
    }
    /* Alignments that are not powers of two round up to one (glibc's memalign). */
    void *p = F(memalign)(24, 10);
    CHECK(p && aligned(p, 32));
    F(free)(p);
    p = F(memalign)(3000, 10);
    CHECK(p && aligned(p, 4096));
    F(free)(p);
    p = F(aligned_alloc)(3, 10);
    CHECK(p && aligned(p, 4));
    F(free)(p);
    p = F(memalign)(0, 10);
    CHECK(p);
    F(free)(p);
    CHECK(F(posix_memalign)(&p, 64, 0) == 0 && p && aligned(p, 64));
    F(free)(p);

    /* valloc: page-aligned. pvalloc: page-aligned whole pages, one page for 0. */
    static const size_t vs[] = {0, 1, 4096, 5000, 100000};
    for (size_t i = 0; i < sizeof vs / sizeof *vs; i++) {
        p = F(valloc)(vs[i]);
        CHECK(p && aligned(p, page));
        CHECK(F(malloc_usable_size)(p) >= vs[i]);
        fill(p, vs[i], 0x44);
        F(free)(p);
        p = F(pvalloc)(vs[i]);
        CHECK(p && aligned(p, page));
        size_t whole = (vs[i] + page - 1) / page * page;
        CHECK(F(malloc_usable_size)(p) >= whole);
        if (mode == SMALLOC) CHECK(F(malloc_usable_size)(p) >= page);
        fill(p, whole ? whole : (mode == SMALLOC ? page : 0), 0x55);
        F(free)(p);
    }
}

static void section_usable(void) {
    CHECK(F(malloc_usable_size)(NULL) == 0);
    for (size_t n = 1; n < (8 << 20); n = n * 2 + n / 3 + 1) {
        /* Two neighbours, each written to its last usable byte, must not overlap. */
        unsigned char *a = F(malloc)(n), *b = F(malloc)(n);
        CHECK(a && b);
        size_t ua = F(malloc_usable_size)(a), ub = F(malloc_usable_size)(b);
        CHECK(ua >= n && ub >= n);
        if (mode == SMALLOC) CHECK(ua == slot_size(n) && ub == slot_size(n));
        fill(a, ua, 0xa1);
        fill(b, ub, 0xb2);
        CHECK(sampled_are(a, ua, 0xa1) && sampled_are(b, ub, 0xb2));
        F(free)(a);
        F(free)(b);
    }
    void *p = F(memalign)(65536, 100);
    CHECK(p);
    if (mode == SMALLOC) CHECK(F(malloc_usable_size)(p) == 65536);
    F(free)(p);
}

/* free_sized and free_aligned_sized are C23; glibc 2.36 has none, so they are looked up. */
static void section_c23(void) {
#ifdef PREFIXED
    void (*fs)(void *, size_t) = smalloc_free_sized;
    void (*fas)(void *, size_t, size_t) = smalloc_free_aligned_sized;
#else
    void (*fs)(void *, size_t) = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "free_sized");
    void (*fas)(void *, size_t, size_t) =
        (void (*)(void *, size_t, size_t))dlsym(RTLD_DEFAULT, "free_aligned_sized");
    if (mode == GLIBC && !fs) return; /* not in this libc */
#endif
    CHECK(fs && fas);
    for (size_t n = 1; n < (1 << 24); n *= 3) {
        void *p = F(malloc)(n);
        CHECK(p);
        fill(p, n, 1);
        fs(p, n);
        p = F(aligned_alloc)(256, n);
        CHECK(p && aligned(p, 256));
        fill(p, n, 2);
        fas(p, 256, n);
    }
    fs(NULL, 0);
    fas(NULL, 64, 0);
}

#ifndef PREFIXED
/* The ld.so data segment: start-up allocations of the loader live in its tail. */
static int find_loader_data(struct dl_phdr_info *info, size_t size, void *out) {
    (void)size;
    if (!strstr(info->dlpi_name, "ld-linux")) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W)) {
            *(char **)out = (char *)(info->dlpi_addr + ph->p_vaddr) + 16;
            return 1;
        }
    }
    return 0;
}
#endif

static void section_foreign(void) {
    /* Blocks of glibc's malloc go back to glibc, wherever they are handed in. */
    unsigned char *g = __libc_malloc(100);
    CHECK(g);
    fill(g, 100, 0x61);
    CHECK(F(malloc_usable_size)(g) >= 100);
    unsigned char *g2 = F(realloc)(g, 5000);
    CHECK(g2 && all_are(g2, 100, 0x61));
    F(free)(g2);

    /* Page-aligned glibc blocks (the shape of smalloc's direct mappings), small and mmapped. */
    static const size_t sizes[] = {10000, 1 << 21};
    for (size_t i = 0; i < 2; i++) {
        unsigned char *pa = __libc_memalign(page, sizes[i]);
        CHECK(pa && aligned(pa, page));
        fill(pa, sizes[i], 0x62);
        CHECK(F(malloc_usable_size)(pa) >= sizes[i]);
        F(free)(pa);
    }
    unsigned char *pb = __libc_memalign(page, 3 * page);
    CHECK(pb);
    fill(pb, 3 * page, 0x63);
    pb = F(realloc)(pb, 10 * page);
    CHECK(pb && all_are(pb, 3 * page, 0x63));
    F(free)(pb);

#ifndef PREFIXED
    if (mode == GLIBC) return;

    /* The loader's start-up blocks: the main thread's descriptor and the loader's data.
       They must be left alone: no crash, no reuse, usable size 0, realloc refused. */
    void *tcb = (void *)pthread_self();
    char *ld_data = NULL;
    dl_iterate_phdr(find_loader_data, &ld_data);
    CHECK(ld_data);
    void *loader_blocks[] = {tcb, ld_data};
    for (int i = 0; i < 2; i++) {
        F(free)(loader_blocks[i]);
        CHECK(F(malloc_usable_size)(loader_blocks[i]) == 0);
        errno = 0;
        CHECK(F(realloc)(loader_blocks[i], 64) == NULL && errno == ENOMEM);
    }
    /* The process still works: threads need the descriptor. */
    void *x = F(malloc)(64);
    CHECK(x);
    F(free)(x);
#endif
}

/* smalloc side by side with glibc's malloc, which stays the process's allocator: a library
   built without the standard names (PREFIXED builds linked with it), or the full library opened
   with dlopen(RTLD_LOCAL), whose path is ARG (other builds). */
static void section_separate(const char *lib) {
    void *(*s_malloc)(size_t);
    void *(*s_realloc)(void *, size_t);
    void (*s_free)(void *);
    size_t (*s_usable)(void *);
#ifdef PREFIXED
    (void)lib;
    s_malloc = smalloc_malloc;
    s_realloc = smalloc_realloc;
    s_free = smalloc_free;
    s_usable = smalloc_malloc_usable_size;
#else
    CHECK(lib);
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!h) fprintf(stderr, "dlopen %s: %s\n", lib, dlerror());
    CHECK(h);
    s_malloc = (void *(*)(size_t))dlsym(h, "smalloc_malloc");
    s_realloc = (void *(*)(void *, size_t))dlsym(h, "smalloc_realloc");
    s_free = (void (*)(void *))dlsym(h, "smalloc_free");
    s_usable = (size_t(*)(void *))dlsym(h, "smalloc_malloc_usable_size");
    CHECK(s_malloc && s_realloc && s_free && s_usable);
#endif
    /* malloc is still glibc's (24 usable bytes for 24), smalloc's is next to it (a 32-byte
       slot). */
    unsigned char *g = malloc(24), *s = s_malloc(24);
    CHECK(g && s);
    CHECK(malloc_usable_size(g) == 24 && s_usable(s) == 32);
    fill(g, 24, 0x91);
    fill(s, 32, 0x92);
    /* glibc's blocks handed to smalloc go back to glibc. */
    CHECK(s_usable(g) == 24);
    g = s_realloc(g, 100);
    CHECK(g && all_are(g, 24, 0x91) && malloc_usable_size(g) >= 100);
    s_free(g);
    s = s_realloc(s, 1000);
    CHECK(s && all_are(s, 32, 0x92) && s_usable(s) >= 1000);
    s_free(s);
    for (int i = 0; i < 100000; i++) {
        void *a = s_malloc(i % 1000), *b = malloc(i % 1000);
        CHECK(a && b);
        s_free(a);
        free(b);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Threads: blocks change hands through a shared table, so most are freed by another thread. */

enum { SLOTS = 4096 };
struct entry {
    unsigned char *p;
    size_t n;
};
static _Atomic(struct entry *) table[SLOTS];

static struct entry *make_entry(uint64_t *rng) {
    uint64_t r = next_rand(rng);
    size_t n;
    switch (r % 16) {
    case 0: n = 1 + r % 16384; break;
    case 1: n = (r >> 8) % 997 == 0 ? (1 << 20) + r % (4 << 20) : 1 + r % 4096; break;
    default: n = 1 + r % 256;
    }
    struct entry *e = F(malloc)(sizeof *e);
    CHECK(e);
    e->n = n;
    e->p = (r >> 20) % 5 == 0 ? F(calloc)(1, n) : F(malloc)(n);
    CHECK(e->p && aligned(e->p, 16));
    fill(e->p, n, tag_byte(e->p, n));
    return e;
}

static void drop_entry(struct entry *e) {
    CHECK(sampled_are(e->p, e->n, tag_byte(e->p, e->n)));
    F(free)(e->p);
    F(free)(e);
}

struct stress_args {
    uint64_t seed;
    long ops;
};

static void *stress_thread(void *arg) {
    struct stress_args *a = arg;
    uint64_t rng = a->seed;
    struct entry *mine[16] = {0};
    for (long i = 0; i < a->ops; i++) {
        uint64_t r = next_rand(&rng);
        struct entry *e = make_entry(&rng);
        if (r % 8 == 0) {
            /* Keep some blocks locally, resizing them now and then. */
            struct entry **m = &mine[(r >> 8) % 16];
            if (*m) {
                struct entry *old = *m;
                CHECK(sampled_are(old->p, old->n, tag_byte(old->p, old->n)));
                size_t nn = 1 + (r >> 16) % 20000;
                unsigned char *q = F(realloc)(old->p, nn);
                CHECK(q);
                size_t keep = nn < old->n ? nn : old->n;
                CHECK(sampled_are(q, keep, tag_byte(old->p, old->n)));
                old->p = q;
                old->n = nn;
                fill(q, nn, tag_byte(q, nn));
                drop_entry(old);
            }
            *m = e;
            continue;
        }
        struct entry *prev = atomic_exchange(&table[(r >> 12) % SLOTS], e);
        if (prev) drop_entry(prev);
    }
    for (int i = 0; i < 16; i++)
        if (mine[i]) drop_entry(mine[i]);
    return NULL;
}

static void drain_table(void) {
    for (int i = 0; i < SLOTS; i++) {
        struct entry *e = atomic_exchange(&table[i], NULL);
        if (e) drop_entry(e);
    }
}

static void run_threads(int count, long ops, size_t stack) {
    pthread_t *t = F(malloc)(count * sizeof *t);
    struct stress_args *args = F(malloc)(count * sizeof *args);
    CHECK(t && args);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (stack) pthread_attr_setstacksize(&attr, stack);
    for (int i = 0; i < count; i++) {
        args[i].seed = 0x9e3779b97f4a7c15ull * (i + 1);
        args[i].ops = ops;
        CHECK(pthread_create(&t[i], &attr, stress_thread, &args[i]) == 0);
    }
    for (int i = 0; i < count; i++) CHECK(pthread_join(t[i], NULL) == 0);
    pthread_attr_destroy(&attr);
    drain_table();
    F(free)(t);
    F(free)(args);
}

static void section_threads(void) { run_threads(8, 60000, 0); }

static void section_many_threads(void) {
    /* Hundreds of threads alive at once, twice over (thread numbers past the slab count). */
    for (int round = 0; round < 2; round++) run_threads(400, 500, 256 * 1024);
}

/* ---------------------------------------------------------------------------------------- */

static atomic_int stop_workers;

static void *churn(void *arg) {
    uint64_t rng = (uintptr_t)arg;
    while (!atomic_load(&stop_workers)) {
        struct entry *e = make_entry(&rng);
        struct entry *prev = atomic_exchange(&table[next_rand(&rng) % SLOTS], e);
        if (prev) drop_entry(prev);
    }
    return NULL;
}

static void *child_thread(void *arg) {
    uint64_t rng = (uintptr_t)arg;
    for (int i = 0; i < 500; i++) drop_entry(make_entry(&rng));
    return NULL;
}

static void section_fork(void) {
    pthread_t t[4];
    for (uintptr_t i = 0; i < 4; i++) CHECK(pthread_create(&t[i], NULL, churn, (void *)(i * 77 + 1)) == 0);
    for (int round = 0; round < 12; round++) {
        unsigned char *before = F(malloc)(1000);
        CHECK(before);
        fill(before, 1000, 0xf0);
        usleep(2000);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            /* The child: its only thread allocates, frees what the parent allocated, and
               starts threads of its own. */
            uint64_t rng = 99 + round;
            for (int i = 0; i < 2000; i++) drop_entry(make_entry(&rng));
            CHECK(all_are(before, 1000, 0xf0));
            F(free)(before);
            pthread_t c[4];
            for (uintptr_t i = 0; i < 4; i++) CHECK(pthread_create(&c[i], NULL, child_thread, (void *)(i + 5)) == 0);
            for (int i = 0; i < 4; i++) CHECK(pthread_join(c[i], NULL) == 0);
            _exit(0);
        }
        int status;
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        F(free)(before);
    }
    atomic_store(&stop_workers, 1);
    for (int i = 0; i < 4; i++) CHECK(pthread_join(t[i], NULL) == 0);
    drain_table();
}

/* ---------------------------------------------------------------------------------------- */

static pthread_key_t key;
static atomic_int destructor_calls;

/* Runs at thread exit: checks and frees the thread's block, allocates more, and the first time
   registers a new block, so that the destructor runs again. */
static void destructor(void *v) {
    unsigned char *p = v;
    CHECK(all_are(p + 1, 99, 0xd7));
    int again = p[0] == 1;
    F(free)(p);
    uint64_t rng = (uintptr_t)v;
    for (int i = 0; i < 200; i++) drop_entry(make_entry(&rng));
    if (again) {
        unsigned char *q = F(malloc)(100);
        CHECK(q);
        fill(q, 100, 0xd7);
        q[0] = 2;
        CHECK(pthread_setspecific(key, q) == 0);
    }
    atomic_fetch_add(&destructor_calls, 1);
}

static void *keyed_thread(void *arg) {
    (void)arg;
    unsigned char *p = F(malloc)(100);
    CHECK(p);
    fill(p, 100, 0xd7);
    p[0] = 1;
    CHECK(pthread_setspecific(key, p) == 0);
    return NULL;
}

static void at_exit_allocates(void) {
    void *p = F(malloc)(12345);
    CHECK(p);
    F(free)(p);
}

static void section_thread_exit(void) {
    CHECK(pthread_key_create(&key, destructor) == 0);
    enum { T = 64 };
    pthread_t t[T];
    for (int i = 0; i < T; i++) CHECK(pthread_create(&t[i], NULL, keyed_thread, NULL) == 0);
    for (int i = 0; i < T; i++) CHECK(pthread_join(t[i], NULL) == 0);
    CHECK(atomic_load(&destructor_calls) == 2 * T);
    /* Detached threads exit on their own, with nobody joining. */
    for (int i = 0; i < T; i++) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        CHECK(pthread_create(&t[i], &attr, keyed_thread, NULL) == 0);
        pthread_attr_destroy(&attr);
    }
    while (atomic_load(&destructor_calls) < 4 * T) usleep(1000);
    drain_table();
    atexit(at_exit_allocates);
}

/* ---------------------------------------------------------------------------------------- */

typedef void *(*plugin_alloc_fn)(size_t, unsigned char);
typedef int (*plugin_check_free_fn)(void *, size_t, unsigned char);
typedef int (*plugin_tls_fn)(int);

struct plugin {
    void *handle;
    plugin_alloc_fn alloc;
    plugin_check_free_fn check_free;
    plugin_tls_fn tls;
};

static void open_plugin(struct plugin *pl, const char *path) {
    pl->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!pl->handle) fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
    CHECK(pl->handle);
    pl->alloc = (plugin_alloc_fn)dlsym(pl->handle, "plugin_alloc");
    pl->check_free = (plugin_check_free_fn)dlsym(pl->handle, "plugin_check_free");
    pl->tls = (plugin_tls_fn)dlsym(pl->handle, "plugin_tls");
    CHECK(pl->alloc && pl->check_free && pl->tls);
}

static void exercise_plugin(struct plugin *pl, int i) {
    /* Allocated in the plugin, freed here; allocated here, freed in the plugin. */
    unsigned char *p = pl->alloc(1000 + i, 0x70);
    CHECK(p && all_are(p, 1000 + i, 0x70));
    F(free)(p);
    p = F(malloc)(2000 + i);
    CHECK(p);
    fill(p, 2000 + i, 0x71);
    CHECK(pl->check_free(p, 2000 + i, 0x71));
    CHECK(pl->tls(i) == i);
}

struct plugin_set {
    struct plugin *pl;
    int n;
};

static void *plugin_thread(void *arg) {
    struct plugin_set *s = arg;
    for (int i = 0; i < s->n; i++) exercise_plugin(&s->pl[i], i);
    return NULL;
}

/* ARG is a directory with plugin0.so ... plugin31.so: copies of one plugin with thread-local
   data, so that each is a separate module and the loader's per-thread tables must grow. */
static void section_dlopen(const char *dir) {
    CHECK(dir);
    enum { N = 32 };
    struct plugin pl[N];
    char path[4096];
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < N; i++) {
            snprintf(path, sizeof path, "%s/plugin%d.so", dir, i);
            open_plugin(&pl[i], path);
            exercise_plugin(&pl[i], i);
        }
        struct plugin_set s = {pl, N};
        pthread_t t[4];
        for (int i = 0; i < 4; i++) CHECK(pthread_create(&t[i], NULL, plugin_thread, &s) == 0);
        for (int i = 0; i < 4; i++) CHECK(pthread_join(t[i], NULL) == 0);
        for (int i = 0; i < N; i++) CHECK(dlclose(pl[i].handle) == 0);
    }
}

/* ---------------------------------------------------------------------------------------- */

/* Huge blocks are touched and checked only every 64 MiB (and at their last byte), so that they
   cost little memory; the positions do not depend on the block's size. */
enum { STRIDE = 64 << 20 };

static void touch_pages(unsigned char *p, size_t n, unsigned char b) {
    for (size_t i = 0; i < n; i += STRIDE) p[i] = b;
    p[n - 1] = b;
}

static int pages_are(const unsigned char *p, size_t n, unsigned char b) {
    for (size_t i = 0; i < n; i += STRIDE)
        if (p[i] != b) return 0;
    return 1;
}

static void section_large(void) {
    const size_t gib = (size_t)1 << 30;
    /* Past the biggest slot (128 MiB): a mapping of its own. Only a few pages are touched,
       so little memory is used. */
    const size_t biggest_slot = (size_t)128 << 20;
    const size_t big = 2 * gib + page;
    unsigned char *p = F(malloc)(big);
    CHECK(p && aligned(p, 16));
    size_t us = F(malloc_usable_size)(p);
    CHECK(us >= big);
    if (mode == SMALLOC) CHECK(aligned(p, page) && us == big);
    touch_pages(p, big, 0x81);
    p[us - 1] = 0x81;
    unsigned char *q = F(realloc)(p, 3 * gib);
    CHECK(q && pages_are(q, big, 0x81) && q[us - 1] == 0x81);
    CHECK(F(malloc_usable_size)(q) >= 3 * gib);
    touch_pages(q, 3 * gib, 0x83);
    q = F(realloc)(q, big); /* shrinks in place */
    CHECK(q && pages_are(q, big, 0x83));
    q = F(realloc)(q, 100); /* back into a slot */
    CHECK(q && q[0] == 0x83);
    F(free)(q);

    /* The biggest slot, exactly, and just past it. */
    p = F(malloc)(biggest_slot);
    CHECK(p);
    if (mode == SMALLOC)
        CHECK(F(malloc_usable_size)(p) == biggest_slot && aligned(p, biggest_slot));
    touch_pages(p, biggest_slot, 0x84);
    F(free)(p);
    p = F(malloc)(biggest_slot + 1);
    CHECK(p);
    if (mode == SMALLOC) CHECK(F(malloc_usable_size)(p) == biggest_slot + page);
    touch_pages(p, biggest_slot + 1, 0x84);
    F(free)(p);

    /* From a slot to a mapping, keeping the contents. */
    p = F(malloc)(1 << 20);
    CHECK(p);
    fill(p, 1 << 20, 0x85);
    q = F(realloc)(p, big);
    CHECK(q && all_are(q, 1 << 20, 0x85));
    F(free)(q);

    /* Aligned beyond any slot. */
    p = F(memalign)(4 * gib, 100);
    CHECK(p && aligned(p, 4 * gib));
    fill(p, 100, 0x86);
    CHECK(F(malloc_usable_size)(p) >= 100);
    F(free)(p);
    void *r = NULL;
    CHECK(F(posix_memalign)(&r, 8 * gib, 1 << 20) == 0 && aligned(r, 8 * gib));
    fill(r, 1 << 20, 0x87);
    F(free)(r);

    /* A fresh mapping is zero. */
    p = F(calloc)(1, big);
    CHECK(p && pages_are(p, big, 0) && p[big - 1] == 0);
    F(free)(p);
}

/* Resident memory of this process, in bytes. */
static size_t resident(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    CHECK(f);
    unsigned long total = 0, res = 0;
    CHECK(fscanf(f, "%lu %lu", &total, &res) == 2);
    fclose(f);
    return res * page;
}

/* Growing a big block must not make memory resident that the program never touched: C's
   realloc has no old size, so whatever moves the block must not copy untouched pages. */
static void section_realloc_rss(void) {
    const size_t mib = 1 << 20;
    /* 100 MiB used in smalloc's 128 MiB slot, grown to 200 MiB (a mapping of its own). */
    unsigned char *p = F(malloc)(100 * mib);
    CHECK(p);
    fill(p, 100 * mib, 0x5e);
    size_t before = resident();
    p = F(realloc)(p, 200 * mib);
    CHECK(p && pages_are(p, 100 * mib, 0x5e));
    size_t after = resident();
    if (after > before + 16 * mib) {
        fprintf(stderr, "resident before realloc: %zu MiB, after: %zu MiB\n", before / mib,
                after / mib);
        CHECK(after <= before + 16 * mib);
    }
    F(free)(p);
}

/* ---------------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s glibc|smalloc|fallback SECTION [ARG]\n", argv[0]);
        return 2;
    }
    page = (size_t)sysconf(_SC_PAGESIZE);
    if (!strcmp(argv[1], "glibc")) mode = GLIBC;
    else if (!strcmp(argv[1], "smalloc")) mode = SMALLOC;
    else if (!strcmp(argv[1], "fallback")) mode = FALLBACK;
    else return 2;
    const char *s = argv[2], *arg = argc > 3 ? argv[3] : NULL;
    if (!strcmp(s, "basic")) section_basic();
    else if (!strcmp(s, "errno")) section_errno();
    else if (!strcmp(s, "calloc")) section_calloc();
    else if (!strcmp(s, "realloc")) section_realloc();
    else if (!strcmp(s, "align")) section_align();
    else if (!strcmp(s, "usable")) section_usable();
    else if (!strcmp(s, "c23")) section_c23();
    else if (!strcmp(s, "foreign")) section_foreign();
    else if (!strcmp(s, "separate")) section_separate(arg);
    else if (!strcmp(s, "threads")) section_threads();
    else if (!strcmp(s, "many-threads")) section_many_threads();
    else if (!strcmp(s, "fork")) section_fork();
    else if (!strcmp(s, "thread-exit")) section_thread_exit();
    else if (!strcmp(s, "dlopen")) section_dlopen(arg);
    else if (!strcmp(s, "large")) section_large();
    else if (!strcmp(s, "realloc-rss")) section_realloc_rss();
    else {
        fprintf(stderr, "unknown section %s\n", s);
        return 2;
    }
    printf("ok %s\n", s);
    return 0;
}
