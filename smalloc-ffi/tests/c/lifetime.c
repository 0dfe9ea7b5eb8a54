/*
 * Blocks through their whole life (allocated, measured, resized, freed) in a process whose
 * address space changed before its first allocation.
 *
 *   lifetime MODE        (MODE: glibc, smalloc or fallback; see check.h)
 *
 * Before anything is allocated, the program maps a few regions and runs a few threads with
 * 64 MiB stacks; then it unmaps the regions (glibc unmaps the stacks itself: they are too big
 * for its cache of stacks). Those addresses are free again, and the next big mappings of the
 * process land there: smalloc's direct mappings (blocks over 128 MiB) or, in fallback mode,
 * glibc's mmapped blocks (128 KiB and up). Whatever the allocator saw at its first use, such a
 * block must be measured, resized and freed like any other.
 *
 * Then, in rounds, each of which must leave VmSize and VmRSS close to where they started:
 *   - big blocks: 3 GiB (256 MiB in fallback mode, which runs under `ulimit -v 4000000`),
 *     touched one byte in 1 MiB, grown by a third, shrunk to half, freed;
 *   - ordinary blocks, 8 bytes to 32 MiB (many sizes from 512 KiB up, the range of glibc's
 *     mmapped blocks), all live at once, every page written, grown, shrunk and freed.
 * Contents must survive every resize, every realloc must succeed, and malloc_usable_size must
 * cover the request.
 *
 * Prints "ok lifetime" when every check passed; the first failed check prints its line and the
 * figures involved, and exits with status 1.
 */
#include "check.h"

#include <pthread.h>
#include <sys/mman.h>

/* Regions mapped and unmapped before the first allocation: 4 GiB in all (1 GiB in fallback
   mode), enough room for the big blocks that follow. */
enum { REGIONS = 4 };
/* Threads started and joined before the first allocation, and their stack size. */
enum { THREADS = 3 };
#define STACK_SIZE (64 * MIB)

/* After every round, VmSize and VmRSS may exceed their values before the first round by at
   most this much: what an allocator may keep for reuse (smalloc keeps some empty runs
   resident, about 30 MiB here; glibc keeps about 100 MiB of its heap, whose top its cache of
   small freed blocks pins), less than what a round that gives nothing back leaves behind
   (3 GiB of address space in a big block; about 200 MiB of touched pages in the ordinary
   blocks, in each of the rounds). */
#define SLACK_VM (256 * MIB)
#define SLACK_RSS (192 * MIB)

/* Rounds of big blocks and of ordinary ones. A block that is not given back shows after the
   first round already; more rounds show a leak of any size that adds up. */
enum { BIG_ROUNDS = 16, ORDINARY_ROUNDS = 6 };

/* The byte written at offset `off` of a block painted with `salt`. */
static unsigned char pattern(size_t off, unsigned salt) {
    return (unsigned char)((off >> 12) * 7 + (off >> 18) * 13 + off + salt);
}

/* Writes the pattern of `salt` into a block of n bytes: every byte of a block up to 8 KiB, else
   one byte every `stride` bytes and the last byte. */
static void paint(unsigned char *p, size_t n, size_t stride, unsigned salt) {
    if (n <= 8192) {
        for (size_t i = 0; i < n; i++) p[i] = pattern(i, salt);
        return;
    }
    for (size_t i = 0; i < n; i += stride) p[i] = pattern(i, salt);
    p[n - 1] = pattern(n - 1, salt);
}

/* Whether the bytes that paint(p, n, stride, salt) wrote below `limit` are still there;
   reports the first one that is not. */
static int painted(const unsigned char *p, size_t n, size_t stride, size_t limit, unsigned salt) {
    size_t step = n <= 8192 ? 1 : stride;
    for (size_t i = 0; i < n && i < limit; i += step)
        if (p[i] != pattern(i, salt)) {
            fprintf(stderr, "byte %zu of a %zu-byte block is %d, not %d\n", i, n, p[i],
                    pattern(i, salt));
            return 0;
        }
    if (n > 8192 && n - 1 < limit && p[n - 1] != pattern(n - 1, salt)) {
        fprintf(stderr, "last byte of a %zu-byte block is %d, not %d\n", n, p[n - 1],
                pattern(n - 1, salt));
        return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------------------------------- */

static void *idle_thread(void *arg) {
    /* Use some of the stack, so that it is really there. */
    volatile unsigned char buf[256 * 1024];
    for (size_t i = 0; i < sizeof buf; i += 4096) buf[i] = (unsigned char)i;
    return arg;
}

/* Changes the address space before anything is allocated (pthread_create's own allocation of
   the new thread's TLS vector aside, which makes the allocator start with the regions and the
   first stack mapped), and leaves it as it was. */
static void before_the_first_malloc(void) {
    size_t region = mode == FALLBACK ? 256 * MIB : GIB;
    unsigned char *regions[REGIONS];
    for (int i = 0; i < REGIONS; i++) {
        regions[i] = mmap(NULL, region, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        CHECK(regions[i] != MAP_FAILED);
        regions[i][0] = 1;
        regions[i][region - 1] = 1;
    }
    pthread_attr_t attr;
    CHECK(pthread_attr_init(&attr) == 0);
    CHECK(pthread_attr_setstacksize(&attr, STACK_SIZE) == 0);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) CHECK(pthread_create(&t[i], &attr, idle_thread, NULL) == 0);
    for (int i = 0; i < THREADS; i++) CHECK(pthread_join(t[i], NULL) == 0);
    CHECK(pthread_attr_destroy(&attr) == 0);
    for (int i = 0; i < REGIONS; i++) CHECK(munmap(regions[i], region) == 0);
}

/* ---------------------------------------------------------------------------------------- */

static size_t base_vm, base_rss;
/* The most VmSize and VmRSS were above their start after a round, for the report. */
static size_t most_vm, most_rss;

/* VmSize and VmRSS must be back close to where they were before the first round. */
static void check_back_to_base(const char *what, int round) {
    size_t vm = vm_size(), rss = vm_rss();
    if (vm > base_vm && vm - base_vm > most_vm) most_vm = vm - base_vm;
    if (rss > base_rss && rss - base_rss > most_rss) most_rss = rss - base_rss;
    CHECKF(vm <= base_vm + SLACK_VM,
           "%s, round %d: VmSize %.1f MiB, %.1f MiB more than before the first round "
           "(at most %.0f MiB allowed): freed blocks were not given back",
           what, round, mib(vm), mib(vm - base_vm), mib(SLACK_VM));
    CHECKF(rss <= base_rss + SLACK_RSS,
           "%s, round %d: VmRSS %.1f MiB, %.1f MiB more than before the first round "
           "(at most %.0f MiB allowed): freed blocks were not given back",
           what, round, mib(rss), mib(rss - base_rss), mib(SLACK_RSS));
}

/* malloc(n): must succeed, be aligned to 16 and measure at least n bytes. */
static unsigned char *alloc_checked(size_t n) {
    unsigned char *p = F(malloc)(n);
    CHECKF(p, API "malloc(%zu) returned NULL", n);
    CHECKF(((uintptr_t)p & 15) == 0, API "malloc(%zu) returned %p, not aligned to 16", n,
           (void *)p);
    size_t us = F(malloc_usable_size)(p);
    CHECKF(us >= n, API "malloc_usable_size of a %zu-byte block at %p is %zu", n, (void *)p, us);
    return p;
}

/* realloc(p, to) of a block painted over `from` bytes: must succeed, keep the contents and
   measure at least `to` bytes. */
static unsigned char *realloc_checked(unsigned char *p, size_t from, size_t to, size_t stride,
                                      unsigned salt) {
    void *old = p;
    unsigned char *q = F(realloc)(p, to);
    CHECKF(q, API "realloc(%p, %zu) of a %zu-byte block returned NULL", old, to, from);
    CHECKF(((uintptr_t)q & 15) == 0, API "realloc to %zu returned %p, not aligned to 16", to,
           (void *)q);
    size_t us = F(malloc_usable_size)(q);
    CHECKF(us >= to, API "malloc_usable_size after realloc(%p, %zu) from %zu is %zu", old, to,
           from, us);
    CHECKF(painted(q, from, stride, to, salt),
           API "realloc(%p, %zu) of a %zu-byte block lost its contents", old, to, from);
    return q;
}

/* Big blocks: each round allocates one, touches it sparsely, grows it by a third, shrinks it to
   half and frees it. */
static void big_blocks(size_t big) {
    const size_t stride = MIB;
    for (int round = 0; round < BIG_ROUNDS; round++) {
        unsigned salt = (unsigned)round * 3 + 1;
        unsigned char *p = alloc_checked(big);
        paint(p, big, stride, salt);
        CHECKF(painted(p, big, stride, big, salt), "a fresh %zu-byte block", big);
        size_t grown = big + big / 3;
        p = realloc_checked(p, big, grown, stride, salt);
        p = realloc_checked(p, big, big / 2, stride, salt);
        errno = EDOM;
        F(free)(p);
        CHECKF(errno == EDOM, API "free of a big block changed errno from EDOM to %d", errno);
        check_back_to_base("big blocks", round);
    }
    /* From a slot to a mapping of its own and back, keeping the contents. */
    unsigned char *p = alloc_checked(MIB);
    paint(p, MIB, 4096, 99);
    p = realloc_checked(p, MIB, big, 4096, 99);
    p = realloc_checked(p, MIB, 1000, 4096, 99);
    F(free)(p);
    check_back_to_base("slot to mapping and back", 0);
}

/* The ordinary sizes: powers of two from 8 bytes to 256 KiB (and one more than each), then, from
   512 KiB to 32 MiB, each power of two and its 5/4, 3/2 and 7/4. */
static size_t ordinary_sizes(size_t *sizes) {
    size_t n = 0;
    for (size_t s = 8; s <= 256 * KIB; s *= 2) {
        sizes[n++] = s;
        sizes[n++] = s + 1;
    }
    for (size_t s = 512 * KIB; s <= 32 * MIB; s *= 2)
        for (size_t q = 4; q < 8; q++)
            if (s / 4 * q <= 32 * MIB) sizes[n++] = s / 4 * q;
    return n;
}

static void ordinary_blocks(void) {
    static size_t sizes[128];
    static unsigned char *blocks[128];
    size_t n = ordinary_sizes(sizes);
    const size_t stride = 4096;
    for (int round = 0; round < ORDINARY_ROUNDS; round++) {
        for (size_t i = 0; i < n; i++) {
            blocks[i] = alloc_checked(sizes[i]);
            paint(blocks[i], sizes[i], stride, (unsigned)(round + i));
        }
        for (size_t i = 0; i < n; i++)
            CHECKF(painted(blocks[i], sizes[i], stride, sizes[i], (unsigned)(round + i)),
                   "ordinary block %zu (%zu bytes) was overwritten", i, sizes[i]);
        for (size_t i = 0; i < n; i++) {
            size_t s = sizes[i], salt = round + i;
            blocks[i] = realloc_checked(blocks[i], s, s + s / 2 + 1, stride, (unsigned)salt);
            blocks[i] = realloc_checked(blocks[i], s, s / 2, stride, (unsigned)salt);
        }
        for (size_t i = 0; i < n; i++) {
            errno = EDOM;
            F(free)(blocks[i]);
            CHECKF(errno == EDOM, API "free of a %zu-byte block changed errno from EDOM to %d",
                   sizes[i] / 2, errno);
        }
        check_back_to_base("ordinary blocks", round);
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s glibc|smalloc|fallback\n", argv[0]);
        return 2;
    }
    set_mode(argv[1]);
    before_the_first_malloc();
    /* One block allocated and freed first: where smalloc serves only the program's own calls
       (side by side with glibc's malloc), this is what starts it, and its reservation must not
       count as VmSize gained. */
    void *first = F(malloc)(1);
    CHECK(first);
    F(free)(first);
    base_vm = vm_size();
    base_rss = vm_rss();
    big_blocks(mode == FALLBACK ? 256 * MIB : 3 * GIB);
    ordinary_blocks();
    fprintf(stderr, "after a round, VmSize was at most %.1f MiB and VmRSS %.1f MiB above their start\n",
            mib(most_vm), mib(most_rss));
    printf("ok lifetime\n");
    return 0;
}
