/*
 * A library the dlopen test loads many copies of: it allocates and frees with the process's
 * malloc, and has thread-local data, which the loader allocates per thread on first use.
 */
#include <stdlib.h>
#include <string.h>

static __thread int tls_values[256];

void *plugin_alloc(size_t n, unsigned char b) {
    void *p = malloc(n);
    if (p) memset(p, b, n);
    return p;
}

int plugin_check_free(void *p, size_t n, unsigned char b) {
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i] != b) return 0;
    free(p);
    return 1;
}

int plugin_tls(int v) {
    tls_values[v & 255] += v;
    int r = tls_values[v & 255];
    tls_values[v & 255] = 0;
    return r;
}
