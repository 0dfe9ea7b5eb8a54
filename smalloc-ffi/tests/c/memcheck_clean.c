/* A correct C program, for running under valgrind's memcheck with and without smalloc preloaded
 * (tests/memcheck.rs): memcheck must find no error in it. It uses every allocation function,
 * blocks grown by realloc past the biggest slot, threads freeing each other's blocks, and glibc
 * functions that allocate internally. One block stays reachable through a global at exit, which
 * is no error: the test reads where memcheck says it was allocated. */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                 \
    do {                                                                         \
        if (!(c)) {                                                              \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
            exit(1);                                                             \
        }                                                                        \
    } while (0)

/* Still reachable at exit (not static, so the compiler keeps the store). */
void *kept;

enum { THREADS = 4, BLOCKS = 200 };
static char *handed[THREADS][BLOCKS];

/* Allocates blocks that the next thread frees. */
static void *worker(void *arg) {
    intptr_t t = (intptr_t)arg;
    for (int i = 0; i < BLOCKS; i++) {
        handed[t][i] = malloc(16 + (size_t)i * 8);
        CHECK(handed[t][i] != NULL);
        memset(handed[t][i], (int)t, 16 + (size_t)i * 8);
    }
    return NULL;
}

static void *freer(void *arg) {
    intptr_t t = (intptr_t)arg;
    for (int i = 0; i < BLOCKS; i++) {
        CHECK(handed[t][i][15] == (char)t);
        free(handed[t][i]);
    }
    return NULL;
}

int main(void) {
    /* Sizes across the classes, written whole, freed in another order. */
    char *p[64];
    for (int i = 0; i < 64; i++) {
        size_t n = (size_t)1 << (i % 22);
        p[i] = malloc(n);
        CHECK(p[i] != NULL);
        memset(p[i], i, n);
        CHECK(malloc_usable_size(p[i]) >= n);
    }
    for (int i = 63; i >= 0; i -= 2) free(p[i]);
    for (int i = 0; i < 64; i += 2) free(p[i]);

    /* calloc reads as zero. */
    unsigned *z = calloc(1000, sizeof *z);
    CHECK(z != NULL);
    for (int i = 0; i < 1000; i++) CHECK(z[i] == 0);
    free(z);

    /* realloc keeps the contents, from a small slot to a direct mapping and back. */
    size_t len = 10;
    char *r = malloc(len);
    CHECK(r != NULL);
    memset(r, 'a', len);
    while (len < (size_t)20 << 20) {
        size_t next = len * 3;
        r = realloc(r, next);
        CHECK(r != NULL);
        CHECK(r[len - 1] == 'a');
        memset(r + len, 'a', next - len);
        len = next;
    }
    r = realloc(r, 100);
    CHECK(r != NULL && r[99] == 'a');
    free(r);

    /* Aligned blocks. */
    void *a = NULL;
    CHECK(posix_memalign(&a, 4096, 5000) == 0 && (uintptr_t)a % 4096 == 0);
    memset(a, 1, 5000);
    free(a);
    a = aligned_alloc(64, 640);
    CHECK(a != NULL && (uintptr_t)a % 64 == 0);
    memset(a, 2, 640);
    free(a);

    /* glibc allocating for us. */
    char *s = strdup("memcheck");
    CHECK(s != NULL && strcmp(s, "memcheck") == 0);
    free(s);
    char *line = NULL;
    CHECK(asprintf(&line, "%d blocks", 42) > 0 && strcmp(line, "42 blocks") == 0);
    free(line);

    /* Threads: each thread's blocks are freed by another thread. */
    pthread_t th[THREADS];
    for (intptr_t t = 0; t < THREADS; t++) CHECK(pthread_create(&th[t], NULL, worker, (void *)t) == 0);
    for (int t = 0; t < THREADS; t++) CHECK(pthread_join(th[t], NULL) == 0);
    for (intptr_t t = 0; t < THREADS; t++)
        CHECK(pthread_create(&th[t], NULL, freer, (void *)((t + 1) % THREADS)) == 0);
    for (int t = 0; t < THREADS; t++) CHECK(pthread_join(th[t], NULL) == 0);

    free(NULL);
    kept = malloc(777);
    CHECK(kept != NULL);
    memset(kept, 3, 777);
    puts("clean: done");
    return 0;
}
