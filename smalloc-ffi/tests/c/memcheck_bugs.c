/* A C program with five memory bugs, for valgrind's memcheck (tests/memcheck.rs): memcheck must
 * report each of them at the line marked `BUG(kind)`, with smalloc preloaded as without it, and
 * the program must carry on correctly after them. Compiled with -O0 -g so that every bad access
 * happens where it is written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LIVE = 3000 };

static int by_address(const void *a, const void *b) {
    char *x = *(char *const *)a, *y = *(char *const *)b;
    return (x > y) - (x < y);
}

int main(void) {
    /* A freed block is not handed out again at once: the next blocks of its size, still live
     * when it is read, are elsewhere. */
    int *freed = malloc(10 * sizeof *freed);
    for (int i = 0; i < 10; i++) freed[i] = i;
    free(freed);
    void *after[8];
    for (int i = 0; i < 8; i++) after[i] = calloc(10, sizeof(int));
    int late = freed[3]; /* BUG(use-after-free) */
    for (int i = 0; i < 8; i++) free(after[i]);

    char *twice = malloc(32);
    strcpy(twice, "freed twice");
    free(twice);
    free(twice); /* BUG(double-free) */
    /* The second free must not have put the block back twice: once many more blocks of its size
     * were freed after it (a quarantine holds a freed block back for a while), every block of a
     * live set of that size is distinct. */
    static char *live[LIVE];
    for (int i = 0; i < LIVE; i++) live[i] = malloc(32);
    for (int i = 0; i < LIVE; i++) free(live[i]);
    for (int i = 0; i < LIVE; i++) live[i] = malloc(32);
    qsort(live, LIVE, sizeof live[0], by_address);
    int distinct = 1;
    for (int i = 1; i < LIVE; i++) distinct &= live[i] != live[i - 1];
    for (int i = 0; i < LIVE; i++) free(live[i]);

    int *fresh = malloc(4 * sizeof *fresh);
    if (fresh[2] > 5) /* BUG(uninitialised) */
        puts("big");
    free(fresh);

    /* A write just past a block whose neighbour is live. */
    char *pair[2] = {malloc(16), malloc(16)};
    memset(pair[0], 0, 16);
    memset(pair[1], 0, 16);
    pair[0][16] = 1; /* BUG(overflow) */
    free(pair[0]);
    free(pair[1]);

    char *lost = malloc(100); /* BUG(leak) */
    memset(lost, 'x', 100);
    lost = NULL;

    printf("bugs: done %d, distinct blocks after the double free: %s\n", late,
           distinct ? "yes" : "no");
    return 0;
}
