/* A C program with five memory bugs, for valgrind's memcheck (tests/memcheck.rs): memcheck must
 * report each of them at the line marked `BUG(kind)`, with smalloc preloaded as without it.
 * Compiled with -O0 -g so that every bad access happens where it is written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Allocations in between, so that a freed slot would be reused at once without a quarantine. */
static void churn(void) {
    for (int i = 0; i < 100; i++) {
        void *q = malloc(40);
        memset(q, 0, 40);
        free(q);
    }
}

int main(void) {
    int *freed = malloc(10 * sizeof *freed);
    for (int i = 0; i < 10; i++) freed[i] = i;
    free(freed);
    churn();
    int late = freed[3]; /* BUG(use-after-free) */

    char *twice = malloc(32);
    strcpy(twice, "freed twice");
    free(twice);
    free(twice); /* BUG(double-free) */

    int *fresh = malloc(4 * sizeof *fresh);
    if (fresh[2] > 5) /* BUG(uninitialised) */
        puts("big");
    free(fresh);

    char *tight = malloc(10);
    memset(tight, 0, 10);
    tight[10] = 1; /* BUG(overflow) */
    free(tight);

    char *lost = malloc(100); /* BUG(leak) */
    memset(lost, 'x', 100);
    lost = NULL;

    printf("bugs: done %d\n", late);
    return 0;
}
