/*
 * The allocator's own figures and controls: malloc_trim, mallinfo2, mallinfo, malloc_info and
 * malloc_stats, checked against what the program allocated and against the resident set that
 * /proc/self/status reports.
 *
 *   stats MODE SECTION [ARG]     (MODE: glibc, smalloc or fallback; see check.h)
 *
 * SECTION is one of:
 *   trim       64 MiB of 1-4 KiB blocks touched and freed: malloc_trim(0) returns 1 and VmRSS
 *              drops by at least TRIM_MARGIN, to within TRIM_MARGIN of where it was before;
 *   mallinfo   uordblks grows by the sum of the malloc_usable_size of the blocks allocated and
 *              drops back when they are freed; hblkhd and hblks count a 200 MiB block; arena
 *              follows VmRSS; fordblks is the free memory still resident (smalloc); mallinfo's
 *              int fields are mallinfo2's;
 *   info PATH  writes malloc_info's XML into PATH and prints the mallinfo2 figures of the same
 *              moment ("uordblks N" lines), for the test driver to compare;
 *   stats      calls malloc_stats (which writes on stderr) with LIVE bytes in live blocks, and
 *              prints "live LIVE".
 *
 * Figures are exact in smalloc mode where the allocator can know them exactly (the bytes in
 * live blocks, in a single-threaded program); figures that depend on glibc's bookkeeping (its
 * chunk headers, its cache of freed blocks) or on the kernel's accounting of resident pages
 * are checked within TOLERANCE_PERCENT.
 *
 * Prints "ok SECTION" when every check passed; the first failed check prints its line and the
 * figures involved, and exits with status 1.
 */
#include "check.h"

/* How far a figure may be from the one it is compared with, where it cannot be exact. */
#define TOLERANCE_PERCENT 10

/* malloc_trim must lower VmRSS by at least this much (smalloc keeps about 16 MiB of the 64 MiB
   resident after the frees, glibc all of it), and leave it within this much of where it was
   before the blocks were allocated. */
#define TRIM_MARGIN (8 * MIB)

/* mallinfo is deprecated in glibc's header; it is one of the functions under test. */
static struct mallinfo call_mallinfo(void) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    return F(mallinfo)();
#pragma GCC diagnostic pop
}

/* A small deterministic generator (xorshift). */
static uint64_t next_rand(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Signed difference of two byte counts, in MiB, for messages. */
static double dmib(size_t a, size_t b) { return ((double)a - (double)b) / (double)MIB; }

/* Whether |a - b| <= limit. */
static int close_to(long long a, long long b, long long limit) {
    return a - b <= limit && b - a <= limit;
}

/* ---------------------------------------------------------------------------------------- */

static void section_trim(void) {
    enum { MAX_BLOCKS = 64 * 1024 };
    static unsigned char *blocks[MAX_BLOCKS];
    uint64_t rng = 42;
    size_t before = vm_rss(), total = 0, n = 0;
    while (total < 64 * MIB) {
        CHECK(n < MAX_BLOCKS);
        size_t size = 1024 + next_rand(&rng) % 3073;
        blocks[n] = F(malloc)(size);
        CHECKF(blocks[n], API "malloc(%zu)", size);
        memset(blocks[n], 0xa5, size);
        total += size;
        n++;
    }
    /* A block after all the others, so that glibc cannot give the freed memory back by simply
       lowering the top of its heap, which it does on free. */
    void *fence = F(malloc)(100);
    CHECK(fence);
    size_t touched = vm_rss();
    for (size_t i = 0; i < n; i++) F(free)(blocks[i]);
    size_t freed = vm_rss();
    int r = F(malloc_trim)(0);
    size_t trimmed = vm_rss();
    fprintf(stderr,
            "VmRSS: %.1f MiB before, %.1f MiB with %zu blocks (%.1f MiB) touched, %.1f MiB "
            "after freeing them, %.1f MiB after malloc_trim(0), which returned %d\n",
            mib(before), mib(touched), n, mib(total), mib(freed), mib(trimmed), r);
    CHECKF(r == 1, API "malloc_trim(0) returned %d with %.1f MiB freed and resident", r,
           dmib(freed, before));
    CHECKF(trimmed + TRIM_MARGIN <= freed,
           API "malloc_trim(0) lowered VmRSS by %.1f MiB only (from %.1f MiB to %.1f MiB; at "
               "least %.0f MiB expected)",
           dmib(freed, trimmed), mib(freed), mib(trimmed), mib(TRIM_MARGIN));
    CHECKF(trimmed <= before + TRIM_MARGIN,
           "after " API "malloc_trim(0) VmRSS is %.1f MiB, %.1f MiB above where it was before "
           "the blocks were allocated (at most %.0f MiB allowed)",
           mib(trimmed), dmib(trimmed, before), mib(TRIM_MARGIN));
    /* The memory given back is usable again. */
    for (size_t i = 0; i < n; i += 7) {
        blocks[i] = F(malloc)(3000);
        CHECK(blocks[i]);
        memset(blocks[i], 0x5a, 3000);
    }
    for (size_t i = 0; i < n; i += 7) F(free)(blocks[i]);
    F(free)(fence);
}

/* ---------------------------------------------------------------------------------------- */

/* uordblks must grow by the bytes in the blocks allocated (the sum of their usable sizes) and
   drop back when they are freed. smalloc counts exactly that. glibc counts its chunks (8 bytes
   more each), moves blocks of 128 KiB and more to hblkhd, and keeps some freed small blocks in
   its cache, still counted: there the sum of uordblks and hblkhd is compared, within
   TOLERANCE_PERCENT. */
static void live_bytes(void) {
    enum { N = 3000 };
    static void *blocks[N];
    uint64_t rng = 7;
    struct mallinfo2 a = F(mallinfo2)();
    size_t sum = 0;
    for (int i = 0; i < N; i++) {
        /* Log-uniform from 1 byte to 64 KiB; in smalloc mode, every 100th from 1 to 32 MiB. */
        size_t size = (size_t)1 << (next_rand(&rng) % 17);
        size += next_rand(&rng) % size;
        if (mode == SMALLOC && i % 100 == 0) size = (MIB << (i / 100 % 6)) - 3 * (size_t)i;
        blocks[i] = F(malloc)(size);
        CHECKF(blocks[i], API "malloc(%zu)", size);
        sum += F(malloc_usable_size)(blocks[i]);
    }
    struct mallinfo2 b = F(mallinfo2)();
    if (mode == SMALLOC) {
        CHECKF(b.uordblks - a.uordblks == sum,
               "uordblks grew by %zu (from %zu to %zu) with %d blocks allocated, whose usable "
               "sizes add up to %zu",
               b.uordblks - a.uordblks, a.uordblks, b.uordblks, N, sum);
        CHECKF(b.hblkhd == a.hblkhd && b.hblks == a.hblks,
               "hblkhd went from %zu to %zu and hblks from %zu to %zu with no block over 128 MiB",
               a.hblkhd, b.hblkhd, a.hblks, b.hblks);
    } else {
        long long grew = (long long)(b.uordblks + b.hblkhd) - (long long)(a.uordblks + a.hblkhd);
        CHECKF(close_to(grew, (long long)sum, (long long)(sum * TOLERANCE_PERCENT / 100)),
               "uordblks + hblkhd grew by %lld with %d blocks allocated, whose usable sizes add "
               "up to %zu",
               grew, N, sum);
    }
    for (int i = 0; i < N; i++) F(free)(blocks[i]);
    struct mallinfo2 c = F(mallinfo2)();
    if (mode == SMALLOC) {
        CHECKF(c.uordblks == a.uordblks,
               "uordblks is %zu after the %d blocks were freed, %zu before they were allocated",
               c.uordblks, N, a.uordblks);
    } else {
        long long left = (long long)(c.uordblks + c.hblkhd) - (long long)(a.uordblks + a.hblkhd);
        CHECKF(close_to(left, 0, (long long)(sum * TOLERANCE_PERCENT / 100)),
               "uordblks + hblkhd is %lld above where it was after %zu bytes were freed", left,
               sum);
    }
}

/* A block beyond the biggest slot (128 MiB) is a mapping of its own: hblks counts it and hblkhd
   its bytes. */
static void big_block(void) {
    const size_t big = 200 * MIB;
    struct mallinfo2 a = F(mallinfo2)();
    unsigned char *p = F(malloc)(big);
    CHECKF(p, API "malloc(%zu)", big);
    p[0] = p[big - 1] = 1;
    struct mallinfo2 b = F(mallinfo2)();
    CHECKF(b.hblks == a.hblks + 1, "hblks went from %zu to %zu with a 200 MiB block allocated",
           a.hblks, b.hblks);
    CHECKF(b.hblkhd >= a.hblkhd + big && b.hblkhd - a.hblkhd <= big / 100 * (100 + TOLERANCE_PERCENT),
           "hblkhd grew by %zu (from %zu to %zu) with a %zu-byte block allocated",
           b.hblkhd - a.hblkhd, a.hblkhd, b.hblkhd, big);
    F(free)(p);
    struct mallinfo2 c = F(mallinfo2)();
    CHECKF(c.hblks == a.hblks && c.hblkhd == a.hblkhd,
           "after the 200 MiB block was freed hblks is %zu (%zu before) and hblkhd %zu (%zu "
           "before)",
           c.hblks, a.hblks, c.hblkhd, a.hblkhd);
}

/* mallinfo gives mallinfo2's figures as ints. */
static void mallinfo_matches(void) {
    struct mallinfo2 a = F(mallinfo2)();
    struct mallinfo m = call_mallinfo();
    struct mallinfo2 b = F(mallinfo2)();
    CHECKF(!memcmp(&a, &b, sizeof a), "two calls of mallinfo2 with nothing in between differ");
#define SAME(field)                                                                        \
    CHECKF(m.field == (int)a.field, "mallinfo's " #field " is %d, mallinfo2's %zu", m.field, \
           a.field)
    SAME(arena);
    SAME(ordblks);
    SAME(smblks);
    SAME(hblks);
    SAME(hblkhd);
    SAME(usmblks);
    SAME(fsmblks);
    SAME(uordblks);
    SAME(fordblks);
    SAME(keepcost);
#undef SAME
}

/* 64 MiB of 4 KiB blocks, touched: arena (the allocator's resident bytes) grows as VmRSS does.
   In smalloc mode, arena keeps following VmRSS when the blocks are freed and trimmed, and
   fordblks is the part of it that is free. glibc's arena is the size of its heap, resident or
   not, and its fordblks counts free bytes whether resident or not: for glibc only the first
   comparison holds. Within TOLERANCE_PERCENT of the 64 MiB. */
static void resident_bytes(void) {
    enum { N = 16384 };
    static unsigned char *blocks[N];
    const long long total = (long long)N * 4096, slack = total * TOLERANCE_PERCENT / 100;
    size_t r0 = vm_rss();
    struct mallinfo2 m0 = F(mallinfo2)();
    for (int i = 0; i < N; i++) {
        blocks[i] = F(malloc)(4096);
        CHECK(blocks[i]);
        memset(blocks[i], i, 4096);
    }
    size_t r1 = vm_rss();
    struct mallinfo2 m1 = F(mallinfo2)();
    CHECKF(close_to((long long)m1.arena - (long long)m0.arena, (long long)r1 - (long long)r0, slack),
           "with 64 MiB of blocks touched arena grew by %.1f MiB and VmRSS by %.1f MiB",
           dmib(m1.arena, m0.arena), dmib(r1, r0));
    if (mode == SMALLOC)
        CHECKF(m1.uordblks - m0.uordblks == (size_t)total,
               "uordblks grew by %zu with %d blocks of 4096 bytes allocated",
               m1.uordblks - m0.uordblks, N);
    for (int i = 0; i < N; i++) F(free)(blocks[i]);
    size_t r2 = vm_rss();
    struct mallinfo2 m2 = F(mallinfo2)();
    int r = F(malloc_trim)(0);
    size_t r3 = vm_rss();
    struct mallinfo2 m3 = F(mallinfo2)();
    fprintf(stderr,
            "VmRSS / arena / fordblks (MiB): %.1f / %.1f / %.1f before, %.1f / %.1f / %.1f "
            "with the blocks touched, %.1f / %.1f / %.1f freed, %.1f / %.1f / %.1f trimmed "
            "(malloc_trim returned %d)\n",
            mib(r0), mib(m0.arena), mib(m0.fordblks), mib(r1), mib(m1.arena),
            mib(m1.fordblks), mib(r2), mib(m2.arena), mib(m2.fordblks), mib(r3),
            mib(m3.arena), mib(m3.fordblks), r);
    if (mode != SMALLOC) return;
    CHECKF(close_to((long long)m2.arena - (long long)m0.arena, (long long)r2 - (long long)r0,
                    slack),
           "with the blocks freed arena is %.1f MiB above where it started, VmRSS %.1f MiB",
           dmib(m2.arena, m0.arena), dmib(r2, r0));
    CHECKF(close_to((long long)m2.fordblks - (long long)m0.fordblks,
                    (long long)m2.arena - (long long)m0.arena, slack),
           "with the blocks freed fordblks is %.1f MiB above where it started, arena %.1f MiB: "
           "all the resident memory they leave is free",
           dmib(m2.fordblks, m0.fordblks), dmib(m2.arena, m0.arena));
    CHECKF(close_to((long long)m3.arena - (long long)m0.arena, (long long)r3 - (long long)r0,
                    slack),
           "after malloc_trim arena is %.1f MiB above where it started, VmRSS %.1f MiB",
           dmib(m3.arena, m0.arena), dmib(r3, r0));
    CHECKF(close_to((long long)m2.fordblks - (long long)m3.fordblks, (long long)r2 - (long long)r3,
                    slack),
           "malloc_trim lowered fordblks by %.1f MiB and VmRSS by %.1f MiB",
           dmib(m2.fordblks, m3.fordblks), dmib(r2, r3));
}

static void section_mallinfo(void) {
    /* First, while glibc's heap holds nothing that is not resident. */
    resident_bytes();
    live_bytes();
    big_block();
    /* With blocks of every kind live, so that the figures are not all zero. */
    void *small = F(malloc)(1000), *mid = F(malloc)(5 * MIB), *big = F(malloc)(200 * MIB);
    CHECK(small && mid && big);
    memset(mid, 1, 5 * MIB);
    mallinfo_matches();
    F(free)(small);
    F(free)(mid);
    F(free)(big);
}

/* ---------------------------------------------------------------------------------------- */

static void section_info(const char *path) {
    CHECK(path);
    /* Blocks of every kind live. */
    void *small = F(malloc)(1000), *mid = F(malloc)(5 * MIB), *big = F(malloc)(200 * MIB);
    CHECK(small && mid && big);
    memset(mid, 1, 5 * MIB);
    FILE *f = fopen(path, "w");
    CHECK(f);
    /* A buffer of its own: the stream allocates nothing while malloc_info writes. */
    static char buf[1 << 20];
    CHECK(setvbuf(f, buf, _IOFBF, sizeof buf) == 0);
    struct mallinfo2 a = F(mallinfo2)();
    int r = F(malloc_info)(0, f);
    struct mallinfo2 b = F(mallinfo2)();
    CHECKF(r == 0, API "malloc_info(0, f) returned %d", r);
    CHECKF(!memcmp(&a, &b, sizeof a), API "malloc_info changed the figures of mallinfo2");
    CHECK(fclose(f) == 0);
    /* Figures worth comparing: the 200 MiB block is a mapping of its own everywhere; smalloc
       counts the 5 MiB block (glibc maps it by itself) in uordblks and, touched, in arena. */
    CHECKF(a.hblks >= 1 && a.hblkhd >= 200 * MIB,
           "hblks %zu and hblkhd %zu with a 200 MiB block live", a.hblks, a.hblkhd);
    if (mode == SMALLOC)
        CHECKF(a.uordblks >= 5 * MIB + 1000 && a.arena >= 5 * MIB,
               "uordblks %zu and arena %zu with 5 MiB + 1000 bytes live in slots, all touched",
               a.uordblks, a.arena);
    printf("uordblks %zu\nfordblks %zu\narena %zu\nhblkhd %zu\nhblks %zu\n", a.uordblks,
           a.fordblks, a.arena, a.hblkhd, a.hblks);
    F(free)(small);
    F(free)(mid);
    F(free)(big);
}

static void section_stats(void) {
    enum { N = 4096 };
    static void *blocks[N];
    for (int i = 0; i < N; i++) {
        blocks[i] = F(malloc)(4096);
        CHECK(blocks[i]);
        memset(blocks[i], 3, 4096);
    }
    F(malloc_stats)();
    printf("live %zu\n", (size_t)N * 4096);
    for (int i = 0; i < N; i++) F(free)(blocks[i]);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s glibc|smalloc|fallback SECTION [ARG]\n", argv[0]);
        return 2;
    }
    set_mode(argv[1]);
    const char *s = argv[2], *arg = argc > 3 ? argv[3] : NULL;
    if (!strcmp(s, "trim")) section_trim();
    else if (!strcmp(s, "mallinfo")) section_mallinfo();
    else if (!strcmp(s, "info")) section_info(arg);
    else if (!strcmp(s, "stats")) section_stats();
    else {
        fprintf(stderr, "unknown section %s\n", s);
        return 2;
    }
    printf("ok %s\n", s);
    return 0;
}
