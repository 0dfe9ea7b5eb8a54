/*
 * smalloc.h: the C interface of smalloc, a lock-free allocator that encodes each block's size
 * class in its address.
 *
 * libsmalloc (libsmalloc.so, libsmalloc.a) exports two sets of functions:
 *
 *   - the standard ones (malloc, free, calloc, realloc, reallocarray, posix_memalign,
 *     aligned_alloc, memalign, valloc, pvalloc, malloc_usable_size, free_sized,
 *     free_aligned_sized, and glibc's malloc_trim, mallinfo, mallinfo2, malloc_stats, mallopt
 *     and malloc_info), which replace the C library's allocator in the whole process when the
 *     library is preloaded (LD_PRELOAD=/path/libsmalloc.so program) or linked;
 *
 *   - the same functions with a smalloc_ prefix, declared below, to call smalloc explicitly.
 *     A library built without its default "interpose" feature exports only these, and can be
 *     linked without replacing the process's malloc; the full library can also be opened with
 *     dlopen(..., RTLD_LOCAL), which binds nobody's malloc to it.
 *
 * Semantics are glibc's, function by function:
 *
 *   - every block is aligned to at least 16 bytes; a zero-byte request returns a unique block;
 *   - failure returns NULL with errno set to ENOMEM; sizes over PTRDIFF_MAX fail, and so do
 *     products that overflow (calloc, reallocarray);
 *   - a call that succeeds leaves errno as it found it, the first call of the process (which
 *     starts the allocator) included;
 *   - a failed realloc leaves the block as it was;
 *   - smalloc_malloc_usable_size() is the block's whole capacity (its slot, a power of two or
 *     three quarters of one, for blocks up to 128 MiB), all of which may be written.
 *
 * Any block from these functions may be freed, resized or measured with either set of names.
 * Blocks from glibc's own malloc (for instance allocated before the library was loaded) may be
 * handed to them too: they are recognized and given back to glibc.
 *
 * All functions are thread-safe and lock-free on smalloc's blocks, work in the child of a
 * multi-threaded fork(), and may be called from thread-exit destructors.
 */
#ifndef SMALLOC_H
#define SMALLOC_H

#include <stddef.h>
#include <stdio.h>  /* FILE, for smalloc_malloc_info() */
#include <malloc.h> /* glibc's struct mallinfo and struct mallinfo2 */

#ifdef __cplusplus
extern "C" {
#endif

/* A block of at least size bytes, 16-byte aligned (a unique block for 0), or NULL with errno
   ENOMEM. */
void *smalloc_malloc(size_t size);

/* n * size bytes, all zero, or NULL with errno ENOMEM (also when n * size overflows). */
void *smalloc_calloc(size_t n, size_t size);

/* Resizes p to size bytes, keeping its contents up to the smaller size, and returns the block's
   (possibly new) address. smalloc_realloc(NULL, n) is smalloc_malloc(n); smalloc_realloc(p, 0)
   frees p and returns NULL. On failure returns NULL with errno ENOMEM and p is untouched. */
void *smalloc_realloc(void *p, size_t size);

/* smalloc_realloc(p, n * size), or NULL with errno ENOMEM (p untouched) if n * size
   overflows. */
void *smalloc_reallocarray(void *p, size_t n, size_t size);

/* Gives the block back. NULL is ignored. errno is preserved. */
void smalloc_free(void *p);

/* C23: smalloc_free(p); size is the size the block was asked for (smalloc does not need it). */
void smalloc_free_sized(void *p, size_t size);

/* C23: smalloc_free(p); align and size are what the block was asked with. */
void smalloc_free_aligned_sized(void *p, size_t align, size_t size);

/* Stores in *memptr a block of size bytes aligned to align and returns 0. Returns EINVAL if
   align is not a power-of-two multiple of sizeof(void *), ENOMEM if the block cannot be had;
   *memptr is left alone on failure. errno is preserved. */
int smalloc_posix_memalign(void **memptr, size_t align, size_t size);

/* C11: a block of size bytes aligned to align. As glibc, size need not be a multiple of align
   and align is treated as by smalloc_memalign(). */
void *smalloc_aligned_alloc(size_t align, size_t size);

/* A block of size bytes aligned to align rounded up to a power of two (at least 16). NULL with
   errno EINVAL if no power of two is that big, ENOMEM if the block cannot be had. */
void *smalloc_memalign(size_t align, size_t size);

/* A page-aligned block of size bytes. */
void *smalloc_valloc(size_t size);

/* A page-aligned block of size bytes rounded up to whole pages (one page for 0). */
void *smalloc_pvalloc(size_t size);

/* How many bytes the block at p really holds (0 for NULL): every one of them may be used. */
size_t smalloc_malloc_usable_size(void *p);

/* Gives free memory back to the OS now (pad is glibc's argument: free memory that may be kept).
   Returns 1 if any memory was released, 0 otherwise. */
int smalloc_malloc_trim(size_t pad);

/* The allocator's figures, in glibc's structure:
     uordblks  bytes in live blocks: the sum of their smalloc_malloc_usable_size();
     fordblks  free bytes the allocator keeps resident;
     arena     resident bytes of the slab region;
     hblkhd    bytes of the blocks that are mappings of their own (over 128 MiB);
     hblks     the number of those blocks.
   When the reservation was refused (fallback), glibc's figures. */
struct mallinfo2 smalloc_mallinfo2(void);

/* smalloc_mallinfo2() in glibc's older structure, whose fields are ints. */
struct mallinfo smalloc_mallinfo(void);

/* Writes a short summary of smalloc_mallinfo2() on stderr, as glibc's malloc_stats() does
   (lines with "system bytes" and "in use bytes"). */
void smalloc_malloc_stats(void);

/* Sets an allocator parameter (glibc's M_ names, from <malloc.h>). Returns 1 if the parameter
   is honoured, 0 otherwise. */
int smalloc_mallopt(int param, int value);

/* Writes smalloc_mallinfo2()'s figures to fp as XML, under a <malloc version="..."> root, and
   returns 0. options must be 0: anything else fails with EINVAL and writes nothing. */
int smalloc_malloc_info(int options, FILE *fp);

#ifdef __cplusplus
}
#endif

#endif /* SMALLOC_H */
