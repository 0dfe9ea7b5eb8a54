/*
 * Compiled as C and as C++ (never linked): include/smalloc.h declares every smalloc_ function,
 * each with the type it must have.
 */
#include "smalloc.h"

void *(*f_malloc)(size_t) = smalloc_malloc;
void *(*f_calloc)(size_t, size_t) = smalloc_calloc;
void *(*f_realloc)(void *, size_t) = smalloc_realloc;
void *(*f_reallocarray)(void *, size_t, size_t) = smalloc_reallocarray;
void (*f_free)(void *) = smalloc_free;
void (*f_free_sized)(void *, size_t) = smalloc_free_sized;
void (*f_free_aligned_sized)(void *, size_t, size_t) = smalloc_free_aligned_sized;
int (*f_posix_memalign)(void **, size_t, size_t) = smalloc_posix_memalign;
void *(*f_aligned_alloc)(size_t, size_t) = smalloc_aligned_alloc;
void *(*f_memalign)(size_t, size_t) = smalloc_memalign;
void *(*f_valloc)(size_t) = smalloc_valloc;
void *(*f_pvalloc)(size_t) = smalloc_pvalloc;
size_t (*f_malloc_usable_size)(void *) = smalloc_malloc_usable_size;
int (*f_malloc_trim)(size_t) = smalloc_malloc_trim;
struct mallinfo2 (*f_mallinfo2)(void) = smalloc_mallinfo2;
struct mallinfo (*f_mallinfo)(void) = smalloc_mallinfo;
void (*f_malloc_stats)(void) = smalloc_malloc_stats;
int (*f_mallopt)(int, int) = smalloc_mallopt;
int (*f_malloc_info)(int, FILE *) = smalloc_malloc_info;
