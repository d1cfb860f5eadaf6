/*
 * kcolors._kernels: the few loops that must be compiled to beat the peers.
 *
 * Everything here trusts its caller (kcolors/kernels.py checks dtypes and
 * contiguity); arrays arrive through the buffer protocol, so no numpy
 * headers are needed to build. Every function releases the GIL while it runs.
 *
 * assign, lloyd and kmeanspp take points of dimension D = 3 (colours) or
 * D = 4 (premultiplied colour and alpha), read from the buffers' lengths,
 * which they check (ValueError unless D is 3 or 4 and the arrays agree);
 * assign, dither_rows and refine_rows also take D = 6 (a colour in sRGB and
 * OKLab side by side: the default space, blend); the colour_* kernels are
 * RGB only; refine_rows takes colours only (3 or 6).
 *
 *   colour_bits, colour_ranks, colour_rows
 *                    the exact colour histogram of 8-bit RGB pixels, and
 *                    each pixel's row in it (or its label, through a table)
 *   assign           nearest centre for each point (and weighted sums for a
 *                    Lloyd update), exact, with a pruned search
 *   lloyd            whole runs of Lloyd's iterations on small point sets
 *   kmeanspp         greedy weighted k-means++ seeding
 *   dither_rows      dithering onto a fixed palette a strip of rows at a time:
 *                    selective or classic error diffusion, or an ordered pattern,
 *                    on colours or colour with alpha (under the rules of transparency)
 *   refine_rows      dithered labels improved by direct search: the blurred error
 *                    and each pixel's own error, traded
 *   smoothness_rows  how flat the grey level is around each pixel (3x3 variance)
 *   png_rows         an indexed PNG's raw rows: filter byte and packed indices
 *   release_memory   free heap memory handed back to the system (glibc's malloc_trim)
 *
 * Portable C11 (no VLAs, no POSIX calls): it builds with gcc, clang and MSVC.
 * The few compiler-specific pieces are below ("Portability"), each with an
 * MSVC form and a plain-C one; scripts/check_c.sh builds with gcc and clang
 * at -Wall -Wextra -Werror, with and without -DKCOLORS_PORTABLE_BUILTINS,
 * and runs the kernel tests on every build.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h> /* malloc_trim, glibc only (not musl, macOS or Windows) */
#endif
/* No fused multiply-add (one rounding for two operations): the sums must be
 * the same on every platform. gcc and clang take -ffp-contract=off (setup.py;
 * clang's pragma would also reorder x86-64 code that has no FMA to fuse);
 * MSVC's default is off since Visual Studio 2022, on before. */
#if defined(_MSC_VER) && defined(__clang__) /* clang-cl */
#pragma STDC FP_CONTRACT OFF
#elif defined(_MSC_VER)
#pragma fp_contract(off)
#endif

/* ------------------------------------------------------------------------ */
/* Portability: inlining and bit counts                                      */
/*                                                                           */
/* GCC and clang get their builtins, MSVC (and clang-cl) its intrinsics;     */
/* anything else, or any compiler given -DKCOLORS_PORTABLE_BUILTINS, gets    */
/* plain C. That switch is how the fallbacks are compiled and tested on a    */
/* machine without MSVC: the answers are the same integers whichever form    */
/* counts them, and inlining changes no sum (see TEMPLATE below).            */
/* BUILTINS, a module constant, says which form a build took.                */
/* ------------------------------------------------------------------------ */

#if defined(KCOLORS_PORTABLE_BUILTINS)
#define KC_BUILTINS "plain"
#elif defined(__GNUC__) /* clang too */
#define KC_BUILTINS "gnu"
#define KC_ALWAYS_INLINE static inline __attribute__((always_inline))
#define KC_POPCOUNT64(x) ((uint32_t)__builtin_popcountll(x))
#define KC_CTZ64(x) ((uint32_t)__builtin_ctzll(x))
#elif defined(_MSC_VER) /* clang-cl too */
#define KC_BUILTINS "msvc"
#define KC_ALWAYS_INLINE static __forceinline
#if defined(_M_X64) || defined(_M_ARM64)
#include <intrin.h>
#define KC_CTZ64(x) kc_ctz64_msvc(x)
static __forceinline uint32_t kc_ctz64_msvc(uint64_t x)
{
    unsigned long index;
    _BitScanForward64(&index, x); /* x != 0: every caller loops while bits are left */
    return (uint32_t)index;
}
#endif
#if defined(_M_X64) && defined(__AVX__)
/* The POPCNT instruction is not in the x64 baseline (/arch:AVX implies it). */
#define KC_POPCOUNT64(x) ((uint32_t)__popcnt64(x))
#endif
#endif

#ifndef KC_BUILTINS
#define KC_BUILTINS "plain"
#endif
#ifndef KC_ALWAYS_INLINE
#define KC_ALWAYS_INLINE static inline
#endif

/* The plain-C forms, defined only where used (clang flags an unused one). */
#if !defined(KC_POPCOUNT64) || !defined(KC_CTZ64)
/* Set bits of x, by adding neighbouring fields (2, 4, 8 bits wide), then the
 * bytes with one multiplication. */
static inline uint32_t kc_popcount64_plain(uint64_t x)
{
    x = x - ((x >> 1) & UINT64_C(0x5555555555555555));
    x = (x & UINT64_C(0x3333333333333333)) + ((x >> 2) & UINT64_C(0x3333333333333333));
    x = (x + (x >> 4)) & UINT64_C(0x0f0f0f0f0f0f0f0f);
    return (uint32_t)((x * UINT64_C(0x0101010101010101)) >> 56);
}
#endif
#ifndef KC_POPCOUNT64
#define KC_POPCOUNT64(x) kc_popcount64_plain(x)
#endif
#ifndef KC_CTZ64
/* Trailing zeros of x != 0: the set bits below its lowest one. */
static inline uint32_t kc_ctz64_plain(uint64_t x)
{
    return kc_popcount64_plain((x & (0 - x)) - 1);
}
#define KC_CTZ64(x) kc_ctz64_plain(x)
#endif
/* End of the portable forms: scripts/check_c.sh compiles the lines from the */
/* "#if defined(KCOLORS_PORTABLE_BUILTINS)" above to here alone, with clang  */
/* aimed at Windows (x64, x64 with AVX, ARM64, x86), to check MSVC's forms. */

#if defined(KCOLORS_PORTABLE_BUILTINS) && defined(__GNUC__)
/* The fallback build proves that no builtin or attribute is left in the code
 * below (macros defined earlier, Python's own among them, may still use them). */
#pragma GCC poison __builtin_popcountll __builtin_ctzll __attribute__
#endif

/* ------------------------------------------------------------------------ */
/* Nearest-centre search.                                                    */
/*                                                                           */
/* Centres are sorted by their projection on one axis (the caller passes the */
/* centres' principal axis). |projection difference| never exceeds the true  */
/* distance, so scanning outwards from a point's own projection can stop as  */
/* soon as the projection gap alone is worse than the best match so far.     */
/*                                                                           */
/* Points have D = 3 coordinates (colours) or 4 (premultiplied colour and    */
/* alpha). The code that depends on the dimension is written once, as        */
/* always-inlined functions taking `dim` as their last argument, and every   */
/* entry point calls it with the literal 3 or 4 (dispatched once per call),  */
/* so the compiler unrolls each copy for its dimension: the 3-D copy is the  */
/* same code, with the same sums in the same order, as a 3-D-only kernel.    */
/* ------------------------------------------------------------------------ */

#define MAX_DIM 6 /* 6: a colour's coordinates in two spaces side by side (assign, dither_rows, refine_rows) */
#define TEMPLATE KC_ALWAYS_INLINE

typedef struct {
    Py_ssize_t k;
    double axis[MAX_DIM]; /* the first D used */
    double *proj;     /* sorted projections, k */
    double *cent;     /* centres in sorted order, k*dim */
    int32_t *order;   /* sorted position -> original centre index */
    int32_t *rank;    /* original centre index -> sorted position */
} Search;

typedef struct {
    double key;
    int32_t index;
} Keyed;

/* Ties broken by index, so the order never depends on the sort's whims. */
static int cmp_keyed(const void *a, const void *b)
{
    const Keyed *x = a, *y = b;
    if (x->key != y->key) return (x->key > y->key) - (x->key < y->key);
    return (x->index > y->index) - (x->index < y->index);
}

/* Squared distance, summed left to right: ((a*a + b*b) + c*c) [+ d*d]. */
TEMPLATE double dist2(const double *c, const double *x, const int dim)
{
    double a = c[0] - x[0], sum = a * a;
    for (int t = 1; t < dim; t++) {
        double b = c[t] - x[t];
        sum += b * b;
    }
    return sum;
}

/* Projection on the axis, summed left to right as dist2. */
TEMPLATE double project(const double *x, const double *axis, const int dim)
{
    double p = x[0] * axis[0];
    for (int t = 1; t < dim; t++) p += x[t] * axis[t];
    return p;
}

/* Thread-safe (no shared state): called without the GIL, from several threads. */
static int search_init(Search *s, const double *centres, Py_ssize_t k, const double *axis, int dim)
{
    s->k = k;
    memcpy(s->axis, axis, sizeof(double) * dim);
    s->proj = malloc(sizeof(double) * k);
    s->cent = malloc(sizeof(double) * k * dim);
    s->order = malloc(sizeof(int32_t) * k);
    s->rank = malloc(sizeof(int32_t) * k);
    Keyed *keyed = malloc(sizeof(Keyed) * k);
    if (!s->proj || !s->cent || !s->order || !s->rank || !keyed) {
        free(keyed);
        return -1;
    }
    for (Py_ssize_t j = 0; j < k; j++) {
        const double *c = centres + dim * j;
        keyed[j].key = dim == 3 ? project(c, axis, 3) : dim == 4 ? project(c, axis, 4) : project(c, axis, 6);
        keyed[j].index = (int32_t)j;
    }
    qsort(keyed, (size_t)k, sizeof(Keyed), cmp_keyed);
    for (Py_ssize_t p = 0; p < k; p++) {
        int32_t j = keyed[p].index;
        s->order[p] = j;
        s->rank[j] = (int32_t)p;
        s->proj[p] = keyed[p].key;
        memcpy(s->cent + dim * p, centres + dim * j, sizeof(double) * dim);
    }
    free(keyed);
    return 0;
}

static void search_free(Search *s)
{
    free(s->proj); free(s->cent); free(s->order); free(s->rank);
}

/* Sorted position of the nearest centre to the point q; `hint` is a sorted
 * position that is probably close (the previous answer), or -1. */
TEMPLATE Py_ssize_t search_nearest_dim(const Search *s, const double *q, Py_ssize_t hint, double *best_d2,
                                       const int dim)
{
    const Py_ssize_t k = s->k;
    double p = project(q, s->axis, dim);
    Py_ssize_t lo = 0, hi = k; /* first position with proj >= p */
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (s->proj[mid] < p) lo = mid + 1; else hi = mid;
    }
    Py_ssize_t best = hint >= 0 ? hint : (lo < k ? lo : k - 1);
    double bd = dist2(s->cent + dim * best, q, dim);
    Py_ssize_t up = lo, down = lo - 1;
    int go_up = 1, go_down = 1;
    while (go_up || go_down) {
        if (go_up) {
            if (up >= k) go_up = 0;
            else {
                double g = s->proj[up] - p;
                if (g * g >= bd) go_up = 0;
                else {
                    double d = dist2(s->cent + dim * up, q, dim);
                    if (d < bd || (d == bd && up < best)) { bd = d; best = up; }
                    up++;
                }
            }
        }
        if (go_down) {
            if (down < 0) go_down = 0;
            else {
                double g = p - s->proj[down];
                if (g * g >= bd) go_down = 0;
                else {
                    double d = dist2(s->cent + dim * down, q, dim);
                    if (d < bd || (d == bd && down < best)) { bd = d; best = down; }
                    down--;
                }
            }
        }
    }
    *best_d2 = bd;
    return best;
}

/* One compiled copy per dimension (left to the compiler to inline or not, as
 * the 3-D-only search_nearest was), taking the coordinates by value (in
 * registers); search_nearest picks one at compile time. */
static Py_ssize_t search_nearest3(const Search *s, double x, double y, double z, Py_ssize_t hint, double *best_d2)
{
    const double q[3] = {x, y, z};
    return search_nearest_dim(s, q, hint, best_d2, 3);
}

static Py_ssize_t search_nearest4(const Search *s, double x, double y, double z, double a, Py_ssize_t hint,
                                  double *best_d2)
{
    const double q[4] = {x, y, z, a};
    return search_nearest_dim(s, q, hint, best_d2, 4);
}

static Py_ssize_t search_nearest6(const Search *s, const double *x, Py_ssize_t hint, double *best_d2)
{
    return search_nearest_dim(s, x, hint, best_d2, 6);
}

TEMPLATE Py_ssize_t search_nearest(const Search *s, const double *x, Py_ssize_t hint, double *best_d2, const int dim)
{
    return dim == 3 ? search_nearest3(s, x[0], x[1], x[2], hint, best_d2)
         : dim == 4 ? search_nearest4(s, x[0], x[1], x[2], x[3], hint, best_d2)
                    : search_nearest6(s, x, hint, best_d2);
}

/* As search_nearest, also giving the squared distance to the second nearest
 * centre (infinite when k == 1): the lower bound of Hamerly's algorithm. */
TEMPLATE Py_ssize_t search_two(const Search *s, const double *x, double *best_d2, double *second_d2, const int dim)
{
    const Py_ssize_t k = s->k;
    double q[MAX_DIM];
    for (int t = 0; t < dim; t++) q[t] = x[t];
    double p = project(q, s->axis, dim);
    Py_ssize_t lo = 0, hi = k;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (s->proj[mid] < p) lo = mid + 1; else hi = mid;
    }
    Py_ssize_t best = -1, up = lo, down = lo - 1;
    double bd = INFINITY, sd = INFINITY;
    while (up < k || down >= 0) {
        double gu = up < k ? s->proj[up] - p : INFINITY;
        double gd = down >= 0 ? p - s->proj[down] : INFINITY;
        Py_ssize_t j = gu <= gd ? up++ : down--;
        double g = gu <= gd ? gu : gd;
        if (g * g >= sd) break; /* every centre left is farther than the second best */
        double d = dist2(s->cent + dim * j, q, dim);
        if (d < bd) { sd = bd; bd = d; best = j; }
        else if (d < sd) sd = d;
    }
    *best_d2 = bd;
    *second_d2 = sd;
    return best;
}

/* ------------------------------------------------------------------------ */
/* Buffer helpers                                                            */
/* ------------------------------------------------------------------------ */

static int get_buf(PyObject *obj, Py_buffer *b, int writable, const char *name)
{
    if (PyObject_GetBuffer(obj, b, (writable ? PyBUF_WRITABLE : 0) | PyBUF_C_CONTIGUOUS) < 0) {
        PyErr_Format(PyExc_TypeError, "%s must be a C-contiguous%s buffer", name,
                     writable ? " writable" : "");
        return -1;
    }
    return 0;
}

/* The dimension of the points, from the axis buffer (3 or 4 doubles, or 6 where `six` allows it); -1 with
 * ValueError otherwise. */
static int axis_dim(const Py_buffer *axis, int six)
{
    Py_ssize_t d = axis->len / (Py_ssize_t)sizeof(double);
    if (axis->len % (Py_ssize_t)sizeof(double) || !(d == 3 || d == 4 || (six && d == 6))) {
        PyErr_Format(PyExc_ValueError, "axis must hold 3%s or 4 float64 values, not %zd bytes", six ? ", 6" : "",
                     axis->len);
        return -1;
    }
    return (int)d;
}

/* Number of rows of `dim` float64 values in b; -1 with ValueError when b does not hold whole rows. */
static Py_ssize_t rows(const Py_buffer *b, int dim, const char *name)
{
    Py_ssize_t row = dim * (Py_ssize_t)sizeof(double);
    if (b->len % row) {
        PyErr_Format(PyExc_ValueError, "%s must hold rows of %d float64 values (%zd bytes given)", name, dim, b->len);
        return -1;
    }
    return b->len / row;
}

/* 0 when b holds exactly `count` items of `size` bytes; -1 with ValueError otherwise. */
static int check_len(const Py_buffer *b, Py_ssize_t count, Py_ssize_t size, const char *name)
{
    if (b->len != count * size) {
        PyErr_Format(PyExc_ValueError, "%s must hold %zd values of %zd bytes (%zd bytes given)", name, count,
                     size, b->len);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The set of colours of 8-bit RGB pixels, as a bitmap of the 2**24 colours  */
/* (2 MiB) with a running count of set bits per 64-bit word (1 MiB). A       */
/* colour's row in the sorted list of distinct colours is then its rank: the */
/* count before its word plus the set bits below it in the word. Nothing is  */
/* kept per pixel, and the tables are small enough to stay in cache, where a */
/* 2**24-entry table of counts (64 MiB) cost ~90 ms of page faults on every  */
/* image and most of the memory of a small one.                              */
/*                                                                           */
/* A pixel takes part when `mask` is None or mask[i] >= need (need 1 for a   */
/* boolean mask, 255 for an alpha channel: only opaque pixels).              */
/*                                                                           */
/*   colour_bits(rgb, mask, need, bits u64[2**18] in/out)                    */
/*       sets the bit of every pixel's colour                                */
/*   colour_ranks(bits, prefix u32[2**18] out, colors u8[m*3] out or None)   */
/*       -> m; fills prefix, and the colours in ascending 0xRRGGBB order     */
/*   colour_rows(rgb, mask, need, bits, prefix, table i32[m+1] or None,      */
/*               out u8[n] or i32[n] or None, counts f64[m] or None)         */
/*       out[i] = the pixel's row, or table[row] with a table; a pixel that  */
/*       takes no part gets -1, or table[m]. counts[row] += 1 per pixel.     */
/* ------------------------------------------------------------------------ */

#define COLOUR_WORDS (1 << 18)

static inline uint32_t colour_key(const uint8_t *c)
{
    return ((uint32_t)c[0] << 16) | ((uint32_t)c[1] << 8) | c[2];
}

static inline uint32_t colour_rank(const uint64_t *bits, const uint32_t *prefix, uint32_t key)
{
    uint64_t below = bits[key >> 6] & ((UINT64_C(1) << (key & 63)) - 1);
    return prefix[key >> 6] + KC_POPCOUNT64(below);
}

/* The optional mask and its threshold, shared by colour_bits and colour_rows. */
static int get_mask(PyObject *o_mask, Py_buffer *mask, Py_ssize_t n)
{
    if (o_mask == Py_None) return 0;
    if (get_buf(o_mask, mask, 0, "mask") < 0) return -1;
    if (check_len(mask, n, 1, "mask") < 0) { PyBuffer_Release(mask); return -1; }
    return 1;
}

static PyObject *colour_bits(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *o_rgb, *o_mask, *o_bits;
    int need;
    if (!PyArg_ParseTuple(args, "OOiO", &o_rgb, &o_mask, &need, &o_bits)) return NULL;
    Py_buffer rgb, mask = {0}, bits;
    if (get_buf(o_rgb, &rgb, 0, "rgb") < 0) return NULL;
    Py_ssize_t n = rgb.len / 3;
    int has_mask = get_mask(o_mask, &mask, n);
    if (has_mask < 0) { PyBuffer_Release(&rgb); return NULL; }
    if (get_buf(o_bits, &bits, 1, "bits") < 0) goto e1;
    if (check_len(&bits, COLOUR_WORDS, 8, "bits") < 0) goto e2;
    const uint8_t *px = rgb.buf, *mk = has_mask ? mask.buf : NULL;
    uint64_t *set = bits.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        if (mk && mk[i] < need) continue;
        uint32_t key = colour_key(px + 3 * i);
        set[key >> 6] |= UINT64_C(1) << (key & 63);
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&bits); PyBuffer_Release(&rgb);
    if (has_mask) PyBuffer_Release(&mask);
    Py_RETURN_NONE;
e2: PyBuffer_Release(&bits);
e1: PyBuffer_Release(&rgb);
    if (has_mask) PyBuffer_Release(&mask);
    return NULL;
}

static PyObject *colour_ranks(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *o_bits, *o_prefix, *o_colors;
    if (!PyArg_ParseTuple(args, "OOO", &o_bits, &o_prefix, &o_colors)) return NULL;
    Py_buffer bits, prefix, colors = {0};
    if (get_buf(o_bits, &bits, 0, "bits") < 0) return NULL;
    if (get_buf(o_prefix, &prefix, 1, "prefix") < 0) { PyBuffer_Release(&bits); return NULL; }
    int has_colors = o_colors != Py_None;
    if (check_len(&bits, COLOUR_WORDS, 8, "bits") < 0 || check_len(&prefix, COLOUR_WORDS, 4, "prefix") < 0
        || (has_colors && get_buf(o_colors, &colors, 1, "colors") < 0)) {
        PyBuffer_Release(&bits); PyBuffer_Release(&prefix); return NULL;
    }
    const uint64_t *set = bits.buf;
    uint32_t *before = prefix.buf;
    uint8_t *col = has_colors ? colors.buf : NULL;
    Py_ssize_t room = has_colors ? colors.len / 3 : 0;
    uint32_t m = 0;
    Py_BEGIN_ALLOW_THREADS
    for (uint32_t w = 0; w < COLOUR_WORDS; w++) {
        before[w] = m;
        uint64_t word = set[w];
        if (col && m + KC_POPCOUNT64(word) <= room) {
            for (uint64_t rest = word; rest; rest &= rest - 1) {
                uint32_t key = (w << 6) | KC_CTZ64(rest);
                uint8_t *c = col + 3 * (size_t)(m++);
                c[0] = (uint8_t)(key >> 16); c[1] = (uint8_t)(key >> 8); c[2] = (uint8_t)key;
            }
        } else {
            m += KC_POPCOUNT64(word);
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&bits); PyBuffer_Release(&prefix);
    if (has_colors) PyBuffer_Release(&colors);
    return PyLong_FromUnsignedLong(m);
}

static PyObject *colour_rows(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *o_rgb, *o_mask, *o_bits, *o_prefix, *o_table, *o_out, *o_counts, *o_weights = Py_None;
    int need;
    if (!PyArg_ParseTuple(args, "OOiOOOOO|O", &o_rgb, &o_mask, &need, &o_bits, &o_prefix, &o_table, &o_out,
                          &o_counts, &o_weights))
        return NULL;
    Py_buffer rgb, mask = {0}, bits, prefix, table = {0}, out = {0}, counts = {0}, weights = {0};
    PyObject *result = NULL;
    if (get_buf(o_rgb, &rgb, 0, "rgb") < 0) return NULL;
    Py_ssize_t n = rgb.len / 3;
    int has_mask = get_mask(o_mask, &mask, n);
    if (has_mask < 0) { PyBuffer_Release(&rgb); return NULL; }
    int has_table = o_table != Py_None, has_counts = o_counts != Py_None, has_out = o_out != Py_None;
    if (get_buf(o_bits, &bits, 0, "bits") < 0) goto e1;
    if (get_buf(o_prefix, &prefix, 0, "prefix") < 0) goto e2;
    if (has_out && get_buf(o_out, &out, 1, "out") < 0) goto e3;
    if (has_table && get_buf(o_table, &table, 0, "table") < 0) goto e4;
    if (has_counts && get_buf(o_counts, &counts, 1, "counts") < 0) goto e5;
    int has_weights = o_weights != Py_None;
    if (has_weights && get_buf(o_weights, &weights, 0, "weights") < 0) goto e6;
    if (has_weights && (!has_counts || weights.len != n * (Py_ssize_t)sizeof(double))) {
        PyErr_SetString(PyExc_ValueError, "weights must hold one float64 per pixel, with counts");
        goto e7;
    }
    Py_ssize_t width = has_out && n ? out.len / n : 4;
    if (check_len(&bits, COLOUR_WORDS, 8, "bits") < 0 || check_len(&prefix, COLOUR_WORDS, 4, "prefix") < 0
        || (width != 1 && width != 4) || (has_out && n && out.len != n * width)) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "out must hold one uint8 or int32 per pixel");
        goto e7;
    }
    if (width == 1 && !has_table) { PyErr_SetString(PyExc_ValueError, "uint8 out needs a table"); goto e7; }
    const double *wt = has_weights ? weights.buf : NULL;
    const uint8_t *px = rgb.buf, *mk = has_mask ? mask.buf : NULL;
    const uint64_t *set = bits.buf;
    const uint32_t *before = prefix.buf;
    const int32_t *tab = has_table ? table.buf : NULL;
    Py_ssize_t m = has_table ? table.len / 4 - 1 : 0;
    double *cnt = has_counts ? counts.buf : NULL;
    uint8_t *out8 = has_out && width == 1 ? out.buf : NULL;
    int32_t *out32 = has_out && width == 4 ? out.buf : NULL;
    int32_t outside = tab ? tab[m] : -1;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        int32_t v;
        if (mk && mk[i] < need) v = outside;
        else {
            uint32_t row = colour_rank(set, before, colour_key(px + 3 * i));
            if (cnt) cnt[row] += wt ? wt[i] : 1.0;
            v = tab ? tab[row] : (int32_t)row;
        }
        if (out8) out8[i] = (uint8_t)v;
        else if (out32) out32[i] = v;
    }
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    result = Py_None;
e7: if (has_weights) PyBuffer_Release(&weights);
e6: if (has_counts) PyBuffer_Release(&counts);
e5: if (has_table) PyBuffer_Release(&table);
e4: if (has_out) PyBuffer_Release(&out);
e3: PyBuffer_Release(&prefix);
e2: PyBuffer_Release(&bits);
e1: PyBuffer_Release(&rgb);
    if (has_mask) PyBuffer_Release(&mask);
    return result;
}

/* ------------------------------------------------------------------------ */
/* assign(points f64[n*D], weights f64[n] or None, centres f64[k*D],         */
/*        axis f64[D], labels i32[n] in/out (hints; -1 = none),              */
/*        sums f64[k*D] out or None, counts f64[k] out or None,              */
/*        bounds f64[n*2] in/out or None, shifts f64[k] or None) -> inertia  */
/* D, the points' dimension (3, 4 or 6), is the length of `axis`.           */
/*                                                                           */
/* With `bounds` (Hamerly's algorithm), each point keeps an upper bound on   */
/* the distance to its centre and a lower bound on the distance to any other */
/* centre; `shifts` says how far each centre moved since the last call (None */
/* on the first call, which fills the bounds). A point whose bounds do not   */
/* cross keeps its label without any search. The inertia is then not known   */
/* and NaN is returned.                                                      */
/* ------------------------------------------------------------------------ */

TEMPLATE double assign_dim(const Search *s, Py_ssize_t n, const double *P, const double *W, const double *D,
                           double max_shift, int32_t *L, double *S, double *C, double *B, const int dim)
{
    const Py_ssize_t k = s->k;
    double inertia = 0.0;
    if (S) { memset(S, 0, sizeof(double) * dim * k); memset(C, 0, sizeof(double) * k); }
    for (Py_ssize_t i = 0; i < n; i++) {
        const double *x = P + dim * i;
        int32_t j;
        double d2;
        if (B) {
            double *upper = B + 2 * i, *lower = B + 2 * i + 1;
            j = L[i];
            int settled = 0;
            if (D && j >= 0) {
                *upper += D[j];
                *lower -= max_shift;
                if (*upper <= *lower) settled = 1;
                else {
                    *upper = sqrt(dist2(s->cent + dim * s->rank[j], x, dim));
                    settled = *upper <= *lower;
                }
            }
            if (!settled) {
                double sd2;
                Py_ssize_t pos = search_two(s, x, &d2, &sd2, dim);
                j = s->order[pos];
                *upper = sqrt(d2);
                *lower = sqrt(sd2);
            }
        } else {
            Py_ssize_t hint = L[i] >= 0 && L[i] < k ? s->rank[L[i]] : -1;
            j = s->order[search_nearest(s, x, hint, &d2, dim)];
            inertia += (W ? W[i] : 1.0) * d2;
        }
        L[i] = j;
        if (S) {
            double wi = W ? W[i] : 1.0;
            for (int t = 0; t < dim; t++) S[dim * j + t] += wi * x[t];
            C[j] += wi;
        }
    }
    return inertia;
}

static double assign3(const Search *s, Py_ssize_t n, const double *P, const double *W, const double *D,
                      double max_shift, int32_t *L, double *S, double *C, double *B)
{
    return assign_dim(s, n, P, W, D, max_shift, L, S, C, B, 3);
}

static double assign4(const Search *s, Py_ssize_t n, const double *P, const double *W, const double *D,
                      double max_shift, int32_t *L, double *S, double *C, double *B)
{
    return assign_dim(s, n, P, W, D, max_shift, L, S, C, B, 4);
}

static double assign6(const Search *s, Py_ssize_t n, const double *P, const double *W, const double *D,
                      double max_shift, int32_t *L, double *S, double *C, double *B)
{
    return assign_dim(s, n, P, W, D, max_shift, L, S, C, B, 6);
}

static PyObject *assign(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *o_pts, *o_w, *o_cent, *o_axis, *o_lab, *o_sums, *o_cnt, *o_bnd = Py_None, *o_shift = Py_None;
    if (!PyArg_ParseTuple(args, "OOOOOOO|OO", &o_pts, &o_w, &o_cent, &o_axis, &o_lab, &o_sums, &o_cnt,
                          &o_bnd, &o_shift))
        return NULL;
    Py_buffer pts, w = {0}, cent, axis, lab, sums = {0}, cnt = {0}, bnd = {0}, shf = {0};
    int has_w = o_w != Py_None, has_sums = o_sums != Py_None;
    int has_b = o_bnd != Py_None, has_s = o_shift != Py_None;
    PyObject *result = NULL;
    if (get_buf(o_pts, &pts, 0, "points") < 0) return NULL;
    if (get_buf(o_cent, &cent, 0, "centres") < 0) goto e1;
    if (get_buf(o_axis, &axis, 0, "axis") < 0) goto e2;
    if (get_buf(o_lab, &lab, 1, "labels") < 0) goto e3;
    if (has_w && get_buf(o_w, &w, 0, "weights") < 0) goto e4;
    if (has_sums && get_buf(o_sums, &sums, 1, "sums") < 0) goto e5;
    if (has_sums && get_buf(o_cnt, &cnt, 1, "counts") < 0) goto e6;
    if (has_b && get_buf(o_bnd, &bnd, 1, "bounds") < 0) goto e7;
    if (has_s && get_buf(o_shift, &shf, 0, "shifts") < 0) goto e8;

    int dim = axis_dim(&axis, 1);
    if (dim < 0) goto e9;
    Py_ssize_t n = rows(&pts, dim, "points"), k = rows(&cent, dim, "centres");
    if (n < 0 || k < 0 || check_len(&lab, n, sizeof(int32_t), "labels") < 0
        || (has_w && check_len(&w, n, sizeof(double), "weights") < 0)
        || (has_sums && (check_len(&sums, k * dim, sizeof(double), "sums") < 0
                         || check_len(&cnt, k, sizeof(double), "counts") < 0))
        || (has_b && check_len(&bnd, 2 * n, sizeof(double), "bounds") < 0)
        || (has_s && check_len(&shf, k, sizeof(double), "shifts") < 0))
        goto e9;
    const double *P = pts.buf, *W = has_w ? w.buf : NULL, *D = has_s ? shf.buf : NULL;
    int32_t *L = lab.buf;
    double *S = has_sums ? sums.buf : NULL, *C = has_sums ? cnt.buf : NULL, *B = has_b ? bnd.buf : NULL;
    Search s;
    if (search_init(&s, cent.buf, k, axis.buf, dim) < 0) { search_free(&s); PyErr_NoMemory(); goto e9; }
    double inertia, max_shift = 0.0;
    if (D) for (Py_ssize_t j = 0; j < k; j++) if (D[j] > max_shift) max_shift = D[j];
    Py_BEGIN_ALLOW_THREADS
    inertia = dim == 3 ? assign3(&s, n, P, W, D, max_shift, L, S, C, B)
            : dim == 4 ? assign4(&s, n, P, W, D, max_shift, L, S, C, B)
                       : assign6(&s, n, P, W, D, max_shift, L, S, C, B);
    Py_END_ALLOW_THREADS
    search_free(&s);
    result = PyFloat_FromDouble(B ? NAN : inertia);
e9: if (has_s) PyBuffer_Release(&shf);
e8: if (has_b) PyBuffer_Release(&bnd);
e7: if (has_sums) PyBuffer_Release(&cnt);
e6: if (has_sums) PyBuffer_Release(&sums);
e5: if (has_w) PyBuffer_Release(&w);
e4: PyBuffer_Release(&lab);
e3: PyBuffer_Release(&axis);
e2: PyBuffer_Release(&cent);
e1: PyBuffer_Release(&pts);
    return result;
}

/* ------------------------------------------------------------------------ */
/* lloyd(points f64[n*D], weights f64[n], centres f64[k*D] in/out,           */
/*       axis f64[D], labels i32[n] in/out, max_iter, threshold)             */
/*       -> (iterations, empty)                                              */
/* D (3 or 4) is the length of `axis`.                                       */
/* Whole runs of Lloyd's iterations for small point sets (the coarse levels, */
/* where Python's overhead per iteration would cost more than the work):     */
/* assign each point its nearest centre (with Yinyang bounds, below),      */
/* move each centre to its weighted mean, stop when the squared moves add up */
/* to no more than `threshold`.                                              */
/* Returns early, with `empty` set, when a cluster empties: the caller moves */
/* it and calls again.                                                       */
/* ------------------------------------------------------------------------ */

/* Scratch memory of a Lloyd run (lloyd_dim). Groups: the centres split into t groups of neighbours, each
 * point keeping one lower bound per group (Yinyang k-means, Ding et al. 2015). */
#define MAX_GROUPS 32
#ifndef GROUP_SIZE
#define GROUP_SIZE 16 /* centres per group */
#endif
typedef struct {
    double *sums, *tot;  /* k*D, k: the update */
    double *upper;       /* n: bound on the distance from each point to its centre */
    double *lower;       /* n*t: bound on the distance from each point to any other centre of each group */
    double *shift, *half;/* k: how far each centre moved; half the gap to its nearest other centre */
    double *drift;       /* t: the farthest any centre of the group moved */
    int32_t *group;      /* k: each centre's group */
    int32_t *members;    /* k: centres grouped, group g at members[start[g] .. start[g+1]) */
    int32_t *start;      /* t+1 */
    double centre[MAX_GROUPS * MAX_DIM], radius[MAX_GROUPS]; /* each group's mean, and its farthest member */
    Py_ssize_t t;
} Work;

/* Groups of centres near each other: a few unweighted Lloyd iterations on the centres themselves, from
 * t centres spread along the search axis (their sorted order). */
TEMPLATE void group_centres(const Search *s, const double *C, Work *w, const int dim)
{
    const Py_ssize_t k = s->k, t = w->t;
    double seeds[MAX_GROUPS * MAX_DIM], acc[MAX_GROUPS * MAX_DIM], cnt[MAX_GROUPS];
    for (Py_ssize_t g = 0; g < t; g++)
        memcpy(seeds + dim * g, C + dim * s->order[(2 * g + 1) * k / (2 * t)], sizeof(double) * dim);
    for (int round = 0; round < 5; round++) {
        memset(acc, 0, sizeof(acc)); memset(cnt, 0, sizeof(cnt));
        for (Py_ssize_t j = 0; j < k; j++) {
            Py_ssize_t best = 0;
            double bd = INFINITY;
            for (Py_ssize_t g = 0; g < t; g++) {
                double d = dist2(seeds + dim * g, C + dim * j, dim);
                if (d < bd) { bd = d; best = g; }
            }
            w->group[j] = (int32_t)best;
            for (int c = 0; c < dim; c++) acc[dim * best + c] += C[dim * j + c];
            cnt[best] += 1;
        }
        for (Py_ssize_t g = 0; g < t; g++)
            if (cnt[g] > 0) for (int c = 0; c < dim; c++) seeds[dim * g + c] = acc[dim * g + c] / cnt[g];
    }
    memcpy(w->centre, seeds, sizeof(double) * dim * t);
    for (Py_ssize_t g = 0; g < t; g++) w->radius[g] = 0.0;
    for (Py_ssize_t j = 0; j < k; j++) {
        double r = sqrt(dist2(seeds + dim * w->group[j], C + dim * j, dim));
        if (r > w->radius[w->group[j]]) w->radius[w->group[j]] = r;
    }
    for (Py_ssize_t g = 0; g <= t; g++) w->start[g] = 0;
    for (Py_ssize_t j = 0; j < k; j++) w->start[w->group[j] + 1]++;
    for (Py_ssize_t g = 0; g < t; g++) w->start[g + 1] += w->start[g];
    int32_t fill[MAX_GROUPS];
    for (Py_ssize_t g = 0; g < t; g++) fill[g] = w->start[g];
    for (Py_ssize_t j = 0; j < k; j++) w->members[fill[w->group[j]]++] = (int32_t)j;
}

/* Point x's nearest centre among the groups whose lower bound is below `within` (the distance to its
 * centre j): those are the only groups that may hold a nearer one. Each searched group's bound becomes
 * exact (its nearest centre other than the one chosen); j's group, if not searched and j loses, gets
 * j's distance. Returns the chosen centre, its distance in *dist. */
TEMPLATE int32_t nearest_in_groups(const double *x, const double *C, const Work *w, double *lower, int32_t j,
                                   double within, double *dist, const int dim)
{
    double first[MAX_GROUPS], second[MAX_GROUPS];
    int32_t which[MAX_GROUPS];
    int searched[MAX_GROUPS];
    int32_t best = j;
    double bd = within * within;
    for (Py_ssize_t g = 0; g < w->t; g++) {
        searched[g] = lower[g] < within;
        if (!searched[g]) continue;
        double d1 = INFINITY, d2 = INFINITY;
        int32_t c1 = -1;
        for (int32_t m = w->start[g]; m < w->start[g + 1]; m++) {
            int32_t c = w->members[m];
            double d = c == j ? within * within : dist2(C + dim * c, x, dim);
            if (d < d1) { d2 = d1; d1 = d; c1 = c; }
            else if (d < d2) d2 = d;
        }
        first[g] = d1; second[g] = d2; which[g] = c1;
        if (d1 < bd || (d1 == bd && c1 < best)) { bd = d1; best = c1; }
    }
    for (Py_ssize_t g = 0; g < w->t; g++)
        if (searched[g]) lower[g] = sqrt(which[g] == best ? second[g] : first[g]);
    if (j >= 0 && best != j && !searched[w->group[j]] && within < lower[w->group[j]]) lower[w->group[j]] = within;
    *dist = sqrt(bd);
    return best;
}

/* Half the distance from each centre to its nearest other centre (Hamerly's s(j)/2): a point within it
 * of its own centre is nearer to that centre than to any other. O(k^2), small beside the n points. */
TEMPLATE void half_gaps(Py_ssize_t k, const double *C, double *half, const int dim)
{
    for (Py_ssize_t j = 0; j < k; j++) half[j] = INFINITY;
    for (Py_ssize_t j = 0; j < k; j++)
        for (Py_ssize_t q = j + 1; q < k; q++) {
            double d = dist2(C + dim * j, C + dim * q, dim);
            if (d < half[j]) half[j] = d;
            if (d < half[q]) half[q] = d;
        }
    for (Py_ssize_t j = 0; j < k; j++) half[j] = 0.5 * sqrt(half[j]);
}

/* The iterations; returns how many ran, -1 when out of memory.
 * Each point keeps an upper bound on the distance to its centre and, per group of centres, a lower bound
 * on the distance to the group's other centres; a centre's move loosens only its own group's bounds. A
 * point is searched again only when its upper bound crosses the lowest of them, and then only in the
 * groups whose bound it crosses. With one group this is Hamerly's algorithm; with k/16 groups, at k=256,
 * a point in a quiet part of colour space is not searched again because a far centre moved. The first
 * iteration finds the nearest two centres and bounds each group by its extent. */
TEMPLATE Py_ssize_t lloyd_dim(Py_ssize_t n, const double *P, const double *W, Py_ssize_t k, double *C,
                              const double *axis, int32_t *L, Py_ssize_t max_iter, double threshold,
                              Work *w, int *empty, const int dim)
{
    Py_ssize_t it = 0;
    const Py_ssize_t t = w->t;
    int emptied = 0, bounded = 0;
    while (it < max_iter && !emptied) {
        Search s;
        if (search_init(&s, C, k, axis, dim) < 0) { search_free(&s); return -1; }
        if (it == 0) group_centres(&s, C, w, dim);
        else half_gaps(k, C, w->half, dim);
        memset(w->sums, 0, sizeof(double) * dim * k);
        memset(w->tot, 0, sizeof(double) * k);
        for (Py_ssize_t i = 0; i < n; i++) {
            const double *x = P + dim * i;
            double *lower = w->lower + t * i;
            int32_t j = L[i];
            if (bounded) {
                double u = w->upper[i] + w->shift[j], least = INFINITY;
                for (Py_ssize_t g = 0; g < t; g++) {
                    lower[g] -= w->drift[g];
                    if (lower[g] < least) least = lower[g];
                }
                double m = least > w->half[j] ? least : w->half[j];
                if (u > m) {
                    u = sqrt(dist2(C + dim * j, x, dim));
                    if (u > m) j = nearest_in_groups(x, C, w, lower, j, u, &u, dim);
                }
                w->upper[i] = u;
            } else { /* the nearest two centres; each group's bound from them and the group's extent */
                double d2, sd2;
                j = s.order[search_two(&s, x, &d2, &sd2, dim)];
                double second = sqrt(sd2);
                w->upper[i] = sqrt(d2);
                for (Py_ssize_t g = 0; g < t; g++) {
                    double reach = sqrt(dist2(w->centre + dim * g, x, dim)) - w->radius[g];
                    lower[g] = reach > second ? reach : second;
                }
            }
            L[i] = j;
            for (int c = 0; c < dim; c++) w->sums[dim * j + c] += W[i] * x[c];
            w->tot[j] += W[i];
        }
        search_free(&s);
        it++;
        double moved = 0.0;
        for (Py_ssize_t g = 0; g < t; g++) w->drift[g] = 0.0;
        for (Py_ssize_t j = 0; j < k; j++) {
            w->shift[j] = 0.0;
            if (w->tot[j] <= 0) { emptied = 1; continue; }
            double d2 = 0.0;
            for (int c = 0; c < dim; c++) {
                double centre = w->sums[dim * j + c] / w->tot[j], d = centre - C[dim * j + c];
                d2 += d * d;
                C[dim * j + c] = centre;
            }
            moved += d2;
            w->shift[j] = sqrt(d2);
            if (w->shift[j] > w->drift[w->group[j]]) w->drift[w->group[j]] = w->shift[j];
        }
        bounded = 1;
        if (moved <= threshold && !emptied) break;
    }
    *empty = emptied;
    return it;
}

static Py_ssize_t lloyd3(Py_ssize_t n, const double *P, const double *W, Py_ssize_t k, double *C,
                         const double *axis, int32_t *L, Py_ssize_t max_iter, double threshold, Work *w, int *empty)
{
    return lloyd_dim(n, P, W, k, C, axis, L, max_iter, threshold, w, empty, 3);
}

static Py_ssize_t lloyd4(Py_ssize_t n, const double *P, const double *W, Py_ssize_t k, double *C,
                         const double *axis, int32_t *L, Py_ssize_t max_iter, double threshold, Work *w, int *empty)
{
    return lloyd_dim(n, P, W, k, C, axis, L, max_iter, threshold, w, empty, 4);
}

static PyObject *lloyd(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *o_pts, *o_w, *o_cent, *o_axis, *o_lab;
    Py_ssize_t max_iter;
    double threshold;
    if (!PyArg_ParseTuple(args, "OOOOOnd", &o_pts, &o_w, &o_cent, &o_axis, &o_lab, &max_iter, &threshold))
        return NULL;
    Py_buffer pts, w, cent, axis, lab;
    if (get_buf(o_pts, &pts, 0, "points") < 0) return NULL;
    if (get_buf(o_w, &w, 0, "weights") < 0) { PyBuffer_Release(&pts); return NULL; }
    if (get_buf(o_cent, &cent, 1, "centres") < 0) { PyBuffer_Release(&pts); PyBuffer_Release(&w); return NULL; }
    if (get_buf(o_axis, &axis, 0, "axis") < 0) {
        PyBuffer_Release(&pts); PyBuffer_Release(&w); PyBuffer_Release(&cent); return NULL;
    }
    if (get_buf(o_lab, &lab, 1, "labels") < 0) {
        PyBuffer_Release(&pts); PyBuffer_Release(&w); PyBuffer_Release(&cent); PyBuffer_Release(&axis);
        return NULL;
    }
    const double *P = pts.buf, *W = w.buf;
    double *C = cent.buf;
    int32_t *L = lab.buf;
    int dim = axis_dim(&axis, 0);
    Py_ssize_t n = dim < 0 ? -1 : rows(&pts, dim, "points"), k = dim < 0 ? -1 : rows(&cent, dim, "centres");
    if (dim < 0 || n < 0 || k < 0 || check_len(&w, n, sizeof(double), "weights") < 0
        || check_len(&lab, n, sizeof(int32_t), "labels") < 0) {
        PyBuffer_Release(&pts); PyBuffer_Release(&w); PyBuffer_Release(&cent); PyBuffer_Release(&axis);
        PyBuffer_Release(&lab);
        return NULL;
    }
    Work work;
    work.t = k / GROUP_SIZE < 1 ? 1 : k / GROUP_SIZE > MAX_GROUPS ? MAX_GROUPS : k / GROUP_SIZE;
    Py_ssize_t rows_n = n > 0 ? n : 1, groups = work.t;
    work.sums = malloc(sizeof(double) * dim * k); work.tot = malloc(sizeof(double) * k);
    work.upper = malloc(sizeof(double) * rows_n); work.lower = malloc(sizeof(double) * rows_n * groups);
    work.shift = malloc(sizeof(double) * k); work.half = malloc(sizeof(double) * k);
    work.drift = malloc(sizeof(double) * groups); work.group = malloc(sizeof(int32_t) * k);
    work.members = malloc(sizeof(int32_t) * k); work.start = malloc(sizeof(int32_t) * (groups + 1));
    Py_ssize_t it = 0;
    int empty = 0, failed = !work.sums || !work.tot || !work.upper || !work.lower || !work.shift || !work.half
                            || !work.drift || !work.group || !work.members || !work.start;
    if (!failed && k > 0) {
        Py_BEGIN_ALLOW_THREADS
        it = dim == 3 ? lloyd3(n, P, W, k, C, axis.buf, L, max_iter, threshold, &work, &empty)
                      : lloyd4(n, P, W, k, C, axis.buf, L, max_iter, threshold, &work, &empty);
        failed = it < 0;
        Py_END_ALLOW_THREADS
    }
    free(work.sums); free(work.tot); free(work.upper); free(work.lower); free(work.shift); free(work.half);
    free(work.drift); free(work.group); free(work.members); free(work.start);
    PyBuffer_Release(&pts); PyBuffer_Release(&w); PyBuffer_Release(&cent); PyBuffer_Release(&axis);
    PyBuffer_Release(&lab);
    if (failed) return PyErr_NoMemory();
    return Py_BuildValue("(ni)", it, empty);
}

/* ------------------------------------------------------------------------ */
/* kmeanspp(points f64[n*D], weights f64[n], centres f64[k*D] out,           */
/*          n_trials, seed) -- greedy k-means++ (as in scikit-learn):        */
/* each new centre is the best of n_trials candidates drawn with probability */
/* proportional to weight x squared distance to the nearest centre so far.   */
/* D (3 or 4) is the length of `points` over that of `weights`.              */
/* ------------------------------------------------------------------------ */

static inline uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline double uniform01(uint64_t *state)
{
    return (double)(splitmix64(state) >> 11) * (1.0 / 9007199254740992.0);
}

/* Index i with cum[i-1] <= r < cum[i]; cum is non-decreasing. */
static Py_ssize_t draw(const double *cum, Py_ssize_t n, double r)
{
    Py_ssize_t lo = 0, hi = n - 1;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (cum[mid] > r) hi = mid; else lo = mid + 1;
    }
    return lo;
}

/* The seeding itself, on the four scratch arrays of n doubles. */
TEMPLATE void kmeanspp_dim(Py_ssize_t n, const double *P, const double *W, Py_ssize_t k, double *out,
                           Py_ssize_t trials, uint64_t seed, double *closest, double *cum, double *cand,
                           double *best, const int dim)
{
    uint64_t rng = seed;
    double total = 0.0;
    for (Py_ssize_t i = 0; i < n; i++) { total += W[i]; cum[i] = total; }
    Py_ssize_t first = draw(cum, n, uniform01(&rng) * total);
    memcpy(out, P + dim * first, sizeof(double) * dim);
    double pot = 0.0;
    for (Py_ssize_t i = 0; i < n; i++) {
        closest[i] = dist2(out, P + dim * i, dim);
        pot += W[i] * closest[i];
    }
    for (Py_ssize_t c = 1; c < k; c++) {
        double acc = 0.0;
        for (Py_ssize_t i = 0; i < n; i++) { acc += W[i] * closest[i]; cum[i] = acc; }
        double best_pot = INFINITY;
        Py_ssize_t best_idx = 0;
        for (Py_ssize_t t = 0; t < trials; t++) {
            Py_ssize_t idx = acc > 0 ? draw(cum, n, uniform01(&rng) * acc) : (Py_ssize_t)(uniform01(&rng) * n);
            const double *q = P + dim * idx;
            double cpot = 0.0;
            for (Py_ssize_t i = 0; i < n; i++) {
                double d = dist2(q, P + dim * i, dim);
                cand[i] = d < closest[i] ? d : closest[i];
                cpot += W[i] * cand[i];
            }
            if (cpot < best_pot) {
                best_pot = cpot; best_idx = idx;
                double *tmp = best; best = cand; cand = tmp;
            }
        }
        memcpy(out + dim * c, P + dim * best_idx, sizeof(double) * dim);
        double *tmp = closest; closest = best; best = tmp;
        pot = best_pot;
    }
    (void)pot;
}

static void kmeanspp3(Py_ssize_t n, const double *P, const double *W, Py_ssize_t k, double *out, Py_ssize_t trials,
                      uint64_t seed, double *closest, double *cum, double *cand, double *best)
{
    kmeanspp_dim(n, P, W, k, out, trials, seed, closest, cum, cand, best, 3);
}

static void kmeanspp4(Py_ssize_t n, const double *P, const double *W, Py_ssize_t k, double *out, Py_ssize_t trials,
                      uint64_t seed, double *closest, double *cum, double *cand, double *best)
{
    kmeanspp_dim(n, P, W, k, out, trials, seed, closest, cum, cand, best, 4);
}

static PyObject *kmeanspp(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *o_pts, *o_w, *o_cent;
    Py_ssize_t trials;
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "OOOnK", &o_pts, &o_w, &o_cent, &trials, &seed)) return NULL;
    Py_buffer pts, w, cent;
    if (get_buf(o_pts, &pts, 0, "points") < 0) return NULL;
    if (get_buf(o_w, &w, 0, "weights") < 0) { PyBuffer_Release(&pts); return NULL; }
    if (get_buf(o_cent, &cent, 1, "centres") < 0) {
        PyBuffer_Release(&pts); PyBuffer_Release(&w); return NULL;
    }
    const double *P = pts.buf, *W = w.buf;
    double *out = cent.buf;
    Py_ssize_t n = w.len / (Py_ssize_t)sizeof(double), k = -1;
    int dim = 0;
    if (n < 1 || w.len % (Py_ssize_t)sizeof(double))
        PyErr_SetString(PyExc_ValueError, "kmeanspp needs at least one point, and one float64 weight for each");
    else if (pts.len != 3 * w.len && pts.len != 4 * w.len)
        PyErr_Format(PyExc_ValueError, "points must hold 3 or 4 float64 values per weight (%zd bytes for %zd weights)",
                     pts.len, n);
    else {
        dim = (int)(pts.len / w.len);
        k = rows(&cent, dim, "centres");
    }
    if (k < 0) {
        PyBuffer_Release(&pts); PyBuffer_Release(&w); PyBuffer_Release(&cent);
        return NULL;
    }
    double *closest = malloc(sizeof(double) * n), *cum = malloc(sizeof(double) * n);
    double *cand = malloc(sizeof(double) * n), *best = malloc(sizeof(double) * n);
    int ok = closest && cum && cand && best;
    if (ok && k > 0) {
        Py_BEGIN_ALLOW_THREADS
        if (dim == 3) kmeanspp3(n, P, W, k, out, trials, seed, closest, cum, cand, best);
        else kmeanspp4(n, P, W, k, out, trials, seed, closest, cum, cand, best);
        Py_END_ALLOW_THREADS
    }
    free(closest); free(cum); free(cand); free(best);
    PyBuffer_Release(&pts); PyBuffer_Release(&w); PyBuffer_Release(&cent);
    if (!ok) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------ */
/* dither_rows(points f64[(r+2)*w*D], width, kind u8[r*w] or None,           */
/*             centres f64[k*D], solid i32[m] or None, axis f64[D],          */
/*             strength, method, y0, outside, carry f64[2*w*D] in/out,       */
/*             labels out u8[r*w] or i32[r*w], band constant B,             */
/*             nearest i32[(r+2)*w] or None)                                 */
/* Error diffusion (serpentine Floyd-Steinberg) or an ordered pattern over a */
/* strip of r rows, in the space the palette was fitted in. `points` holds   */
/* the strip with one row of context above and below (the edge rows repeated */
/* at the image's top and bottom): the selective method looks at the        */
/* neighbours. `carry` holds the error owed to the strip's first row and is  */
/* left holding the error owed to the next strip's, so an image is dithered  */
/* a strip at a time in little memory. y0 is the strip's first row in the    */
/* image (scan direction, pattern phase). `nearest` (opaque pixels only):   */
/* each pixel's undithered colour, given, for the selective method's bands */
/* (searched for if None).                                                   */
/*                                                                           */
/* kind (None: every pixel opaque colour): 0 fully transparent (label        */
/* `outside`; takes and passes no error), 1 translucent (any centre), 2      */
/* opaque (alpha held full, only the `solid` centres; None: any).            */
/*                                                                           */
/* method 0, classic: every pixel takes `strength` of the error owed to it.  */
/* method 1, selective: a pixel takes error only as far as it lies inside an */
/*   area that would take one colour (a band, which would show as a step),   */
/*   little in texture, where dithering is only noise (see below).           */
/* method 2, ordered: each pixel mixes its two nearest palette colours by a  */
/*   fixed 8x8 Bayer threshold: the same colour gives the same pattern in    */
/*   every frame, so flat areas do not shimmer in animations.                */
/* ------------------------------------------------------------------------ */

enum { DITHER_CLASSIC = 0, DITHER_SELECTIVE = 1, DITHER_ORDERED = 2 };

typedef struct {
    const Search *all, *opaque; /* opaque: the solid centres (or all) */
    const int32_t *solid;       /* solid position -> centre index, or NULL */
    double lo[MAX_DIM], hi[MAX_DIM]; /* the centres' bounding box */
    double band;                /* the selective method's constant (see dither_rows_dim) */
} Palette;

/* The nearest allowed centre to v for a pixel of kind `k` (centre index); its point in *c. hints[2]: the
 * last answers of the two searches (sorted positions), which start the next. */
TEMPLATE int32_t nearest_of_kind(const Palette *pal, const double *v, int k, Py_ssize_t *hints, const double **c,
                                 const int dim)
{
    double d2;
    const Search *s = k == 2 ? pal->opaque : pal->all;
    Py_ssize_t *hint = hints + (k == 2);
    Py_ssize_t pos = search_nearest(s, v, *hint, &d2, dim);
    *hint = pos;
    *c = s->cent + dim * pos;
    int32_t j = s->order[pos];
    return k == 2 && pal->solid ? pal->solid[j] : j;
}

static const double BAYER8[64] = {
     0, 32,  8, 40,  2, 34, 10, 42, 48, 16, 56, 24, 50, 18, 58, 26, 12, 44,  4, 36, 14, 46,  6, 38,
    60, 28, 52, 20, 62, 30, 54, 22,  3, 35, 11, 43,  1, 33,  9, 41, 51, 19, 59, 27, 49, 17, 57, 25,
    15, 47,  7, 39, 13, 45,  5, 37, 63, 31, 55, 23, 61, 29, 53, 21};

TEMPLATE void dither_rows_dim(const double *P, Py_ssize_t r, Py_ssize_t w, const uint8_t *K, const Palette *pal,
                              double strength, int method, Py_ssize_t y0, int32_t outside,
                              double *carry, uint8_t *L8, int32_t *L32, int32_t *near, double *band,
                              const int32_t *nearest, const int dim)
{
    double *owed = carry, *next = carry + w * dim; /* error owed to this row, and to the next */
    double full = dim == 4 ? pal->opaque->cent[3] : 0.0; /* the alpha coordinate of an opaque point */
    Py_ssize_t hint[2] = {-1, -1}, hint0[2] = {-1, -1};
    int32_t *near_up = near, *near_row = near + w, *near_down = near + 2 * w; /* undithered nearest, 3 rows */
    if (method == DITHER_SELECTIVE && nearest) {
        memcpy(near_up, nearest, sizeof(int32_t) * w);
        memcpy(near_row, nearest + w, sizeof(int32_t) * w);
    } else if (method == DITHER_SELECTIVE)
        for (Py_ssize_t row = 0; row < 2; row++)
            for (Py_ssize_t x = 0; x < w; x++) {
                const double *c;
                int k = K ? K[x] : 2; /* the row above the strip: taken to be of the first row's kinds */
                (row == 0 ? near_up : near_row)[x] = k ? nearest_of_kind(pal, P + dim * (row * w + x), k, hint0, &c,
                                                                         dim) : -1;
            }
    for (Py_ssize_t y = 0; y < r; y++) {
        const double *here = P + dim * ((y + 1) * w), *below = P + dim * ((y + 2) * w);
        const uint8_t *kinds = K ? K + y * w : NULL;
        if (method == DITHER_SELECTIVE && nearest)
            memcpy(near_down, nearest + (y + 2) * w, sizeof(int32_t) * w);
        else if (method == DITHER_SELECTIVE)
            for (Py_ssize_t x = 0; x < w; x++) {
                const double *c;
                int k = kinds ? (y + 1 < r ? kinds[w + x] : kinds[x]) : 2;
                near_down[x] = k ? nearest_of_kind(pal, below + dim * x, k, hint0, &c, dim) : -1;
            }
        /* Selective: a pixel takes error in proportion to how far it lies inside a band of one colour, as
         * pngquant weighs it: a run of n pixels of one undithered colour along the row, with m of the
         * pixels above and below it of that colour too, counts c = 10 n + 15 m, and each of its pixels
         * takes 1 - B / (B + c) of the error owed. Texture, where the colour changes from pixel to pixel,
         * takes little (dithering there is noise); the inside of a band, which would show as a step,
         * takes nearly all. */
        if (method == DITHER_SELECTIVE)
            for (Py_ssize_t start = 0; start < w;) {
                Py_ssize_t end = start;
                double count = 0.0;
                while (end < w && near_row[end] == near_row[start]) {
                    count += 10.0 + 15.0 * (near_up[end] == near_row[start]) + 15.0 * (near_down[end] == near_row[start]);
                    end++;
                }
                for (Py_ssize_t x = start; x < end; x++) band[x] = 1.0 - pal->band / (pal->band + count);
                start = end;
            }
        memset(next, 0, sizeof(double) * w * dim);
        int forward = ((y0 + y) % 2) == 0;
        Py_ssize_t dx = forward ? 1 : -1;
        for (Py_ssize_t t = 0; t < w; t++) {
            Py_ssize_t x = forward ? t : w - 1 - t, i = y * w + x;
            int k = kinds ? kinds[x] : 2;
            if (k == 0) {
                if (L8) L8[i] = (uint8_t)outside; else L32[i] = outside;
                continue;
            }
            const double *src = here + dim * x;
            double v[MAX_DIM], take = strength;
            const double *c;
            int32_t label;
            if (method == DITHER_ORDERED) {
                /* Mix the nearest centre c1 with the next one beyond it, c2, in the proportion that puts their
                 * mean at the pixel's colour along the line between them; the threshold picks which. */
                int32_t first = nearest_of_kind(pal, src, k, hint, &c, dim);
                const double *c1 = c;
                for (int ch = 0; ch < dim; ch++) v[ch] = src[ch] + (src[ch] - c1[ch]);
                if (k == 2 && dim == 4) v[3] = full;
                Py_ssize_t beyond[2] = {hint[0], hint[1]};
                int32_t second = nearest_of_kind(pal, v, k, beyond, &c, dim);
                label = first;
                if (second != first) {
                    double along = 0.0, span = 0.0;
                    for (int ch = 0; ch < dim; ch++) {
                        along += (src[ch] - c1[ch]) * (c[ch] - c1[ch]);
                        span += (c[ch] - c1[ch]) * (c[ch] - c1[ch]);
                    }
                    double share = span > 0 ? along / span * strength : 0.0;
                    double threshold = (BAYER8[8 * ((y0 + y) & 7) + (x & 7)] + 0.5) / 64.0;
                    if (share > threshold) label = second;
                }
                if (L8) L8[i] = (uint8_t)label; else L32[i] = label;
                continue;
            }
            if (method == DITHER_SELECTIVE) take *= band[x];
            for (int ch = 0; ch < dim; ch++) v[ch] = src[ch] + take * owed[dim * x + ch];
            if (k == 2 && dim == 4) v[3] = full; /* opaque stays opaque: no alpha error is taken */
            /* Error the palette can never pay back would pile up and streak: the colour with its error is kept
             * within the palette's box (or as far out as the pixel's own colour lies: no error, no change). */
            for (int ch = 0; ch < dim; ch++) {
                double lo = src[ch] < pal->lo[ch] ? src[ch] : pal->lo[ch], hi = src[ch] > pal->hi[ch] ? src[ch] : pal->hi[ch];
                v[ch] = v[ch] < lo ? lo : v[ch] > hi ? hi : v[ch];
            }
            label = nearest_of_kind(pal, v, k, hint, &c, dim);
            if (L8) L8[i] = (uint8_t)label; else L32[i] = label;
            double err[MAX_DIM], pass = method == DITHER_CLASSIC ? 1.0 : (take > 0 ? 1.0 : 0.0);
            for (int ch = 0; ch < dim; ch++) err[ch] = (v[ch] - c[ch]) * pass;
            if (k == 2 && dim == 4) err[3] = 0.0;
            /* Floyd-Steinberg: 7/16 ahead, 3/16 behind-below, 5/16 below, 1/16 ahead-below. */
            Py_ssize_t ahead = x + dx, behind = x - dx;
            for (int ch = 0; ch < dim; ch++) {
                if (ahead >= 0 && ahead < w) owed[dim * ahead + ch] += err[ch] * (7.0 / 16);
                if (behind >= 0 && behind < w) next[dim * behind + ch] += err[ch] * (3.0 / 16);
                next[dim * x + ch] += err[ch] * (5.0 / 16);
                if (ahead >= 0 && ahead < w) next[dim * ahead + ch] += err[ch] * (1.0 / 16);
            }
        }
        memcpy(owed, next, sizeof(double) * w * dim);
        int32_t *spare = near_up;
        near_up = near_row; near_row = near_down; near_down = spare;
    }
}

static void dither_rows3(const double *P, Py_ssize_t r, Py_ssize_t w, const uint8_t *K, const Palette *pal,
                         double strength, int method, Py_ssize_t y0, int32_t outside,
                         double *carry, uint8_t *L8, int32_t *L32, int32_t *near, double *band,
                         const int32_t *nearest)
{
    dither_rows_dim(P, r, w, K, pal, strength, method, y0, outside, carry, L8, L32, near, band, nearest, 3);
}

static void dither_rows4(const double *P, Py_ssize_t r, Py_ssize_t w, const uint8_t *K, const Palette *pal,
                         double strength, int method, Py_ssize_t y0, int32_t outside,
                         double *carry, uint8_t *L8, int32_t *L32, int32_t *near, double *band,
                         const int32_t *nearest)
{
    dither_rows_dim(P, r, w, K, pal, strength, method, y0, outside, carry, L8, L32, near, band, nearest, 4);
}

static void dither_rows6(const double *P, Py_ssize_t r, Py_ssize_t w, const uint8_t *K, const Palette *pal,
                         double strength, int method, Py_ssize_t y0, int32_t outside,
                         double *carry, uint8_t *L8, int32_t *L32, int32_t *near, double *band,
                         const int32_t *nearest)
{
    dither_rows_dim(P, r, w, K, pal, strength, method, y0, outside, carry, L8, L32, near, band, nearest, 6);
}

static PyObject *dither_rows(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *o_pts, *o_kind, *o_cent, *o_solid, *o_axis, *o_carry, *o_lab, *o_near;
    Py_ssize_t width, y0;
    double strength, band_constant;
    int method, outside;
    if (!PyArg_ParseTuple(args, "OnOOOOdiniOOdO", &o_pts, &width, &o_kind, &o_cent, &o_solid, &o_axis,
                          &strength, &method, &y0, &outside, &o_carry, &o_lab, &band_constant, &o_near))
        return NULL;
    Py_buffer pts = {0}, kind = {0}, cent = {0}, solid = {0}, axis = {0}, carry = {0}, lab = {0}, given = {0};
    int has_kind = o_kind != Py_None, has_solid = o_solid != Py_None, has_near = o_near != Py_None;
    int ok = get_buf(o_pts, &pts, 0, "points") == 0 && get_buf(o_cent, &cent, 0, "centres") == 0
             && get_buf(o_axis, &axis, 0, "axis") == 0 && get_buf(o_carry, &carry, 1, "carry") == 0
             && get_buf(o_lab, &lab, 1, "labels") == 0 && (!has_kind || get_buf(o_kind, &kind, 0, "kind") == 0)
             && (!has_solid || get_buf(o_solid, &solid, 0, "solid") == 0)
             && (!has_near || get_buf(o_near, &given, 0, "nearest") == 0);
    int dim = ok ? axis_dim(&axis, 1) : -1;
    Py_ssize_t k = dim > 0 ? rows(&cent, dim, "centres") : -1, all_rows = dim > 0 ? rows(&pts, dim, "points") : -1;
    Py_ssize_t r = width > 0 && all_rows >= 0 ? all_rows / width - 2 : -1;
    Py_ssize_t m = has_solid && ok ? solid.len / (Py_ssize_t)sizeof(int32_t) : 0;
    Py_ssize_t width_bytes = r > 0 ? lab.len / (r * width) : 0;
    if (dim > 0 && k >= 0 && (k < 1 || r < 1 || all_rows != (r + 2) * width || (width_bytes != 1 && width_bytes != 4)
                              || lab.len != r * width * width_bytes || carry.len != 2 * width * dim * (Py_ssize_t)sizeof(double)
                              || (has_kind && kind.len != r * width) || (has_solid && m < 1)
                              || method < DITHER_CLASSIC || method > DITHER_ORDERED
                              || (has_near && (has_kind || given.len != (r + 2) * width * (Py_ssize_t)sizeof(int32_t))))) {
        PyErr_SetString(PyExc_ValueError, "dither_rows: arrays of mismatched sizes");
        ok = 0;
    }
    ok = ok && dim > 0 && k > 0;
    double *solid_cent = ok && has_solid ? malloc(sizeof(double) * dim * m) : NULL;
    int32_t *near = ok ? malloc(sizeof(int32_t) * 3 * width) : NULL;
    double *band = ok ? malloc(sizeof(double) * width) : NULL;
    Search all = {0}, opaque = {0};
    if (ok && has_solid) {
        const int32_t *S = solid.buf;
        for (Py_ssize_t j = 0; j < m && ok; j++) {
            if (S[j] < 0 || S[j] >= k) { PyErr_SetString(PyExc_ValueError, "dither_rows: bad solid index"); ok = 0; }
            else if (solid_cent) memcpy(solid_cent + dim * j, (const double *)cent.buf + dim * S[j], sizeof(double) * dim);
        }
    }
    if (ok && (!near || !band || (has_solid && !solid_cent) || search_init(&all, cent.buf, k, axis.buf, dim) < 0
               || (has_solid && search_init(&opaque, solid_cent, m, axis.buf, dim) < 0))) {
        PyErr_NoMemory();
        ok = 0;
    }
    if (ok) {
        const double *C = cent.buf;
        Palette pal = {&all, has_solid ? &opaque : &all, has_solid ? solid.buf : NULL, {0}, {0}, band_constant};
        for (int ch = 0; ch < dim; ch++) { pal.lo[ch] = INFINITY; pal.hi[ch] = -INFINITY; }
        for (Py_ssize_t j = 0; j < k; j++)
            for (int ch = 0; ch < dim; ch++) {
                if (C[dim * j + ch] < pal.lo[ch]) pal.lo[ch] = C[dim * j + ch];
                if (C[dim * j + ch] > pal.hi[ch]) pal.hi[ch] = C[dim * j + ch];
            }
        uint8_t *L8 = width_bytes == 1 ? lab.buf : NULL;
        int32_t *L32 = width_bytes == 4 ? lab.buf : NULL;
        const uint8_t *K = has_kind ? kind.buf : NULL;
        Py_BEGIN_ALLOW_THREADS
        const int32_t *nearest = has_near ? given.buf : NULL;
        if (dim == 3) dither_rows3(pts.buf, r, width, K, &pal, strength, method, y0, outside, carry.buf, L8, L32, near, band,
                                   nearest);
        else if (dim == 4) dither_rows4(pts.buf, r, width, K, &pal, strength, method, y0, outside, carry.buf, L8, L32,
                                        near, band, nearest);
        else dither_rows6(pts.buf, r, width, K, &pal, strength, method, y0, outside, carry.buf, L8, L32, near, band,
                          nearest);
        Py_END_ALLOW_THREADS
    }
    search_free(&all); search_free(&opaque); free(solid_cent); free(near); free(band);
    if (pts.obj) PyBuffer_Release(&pts);
    if (kind.obj) PyBuffer_Release(&kind);
    if (given.obj) PyBuffer_Release(&given);
    if (cent.obj) PyBuffer_Release(&cent);
    if (solid.obj) PyBuffer_Release(&solid);
    if (axis.obj) PyBuffer_Release(&axis);
    if (carry.obj) PyBuffer_Release(&carry);
    if (lab.obj) PyBuffer_Release(&lab);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------ */
/* png_rows(indices u8[h*w], width, bits, out u8[h*(1 + ceil(w*bits/8))])    */
/* The raw image data of an indexed PNG: each row a filter-type byte (0,     */
/* none) then the indices packed 8/bits to a byte, most significant first.   */
/* ------------------------------------------------------------------------ */

static PyObject *png_rows(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *o_idx, *o_out;
    Py_ssize_t width;
    int bits;
    if (!PyArg_ParseTuple(args, "OniO", &o_idx, &width, &bits, &o_out)) return NULL;
    if (bits != 1 && bits != 2 && bits != 4 && bits != 8) {
        PyErr_SetString(PyExc_ValueError, "png_rows: bits must be 1, 2, 4 or 8");
        return NULL;
    }
    Py_buffer idx, out;
    if (get_buf(o_idx, &idx, 0, "indices") < 0) return NULL;
    if (get_buf(o_out, &out, 1, "out") < 0) { PyBuffer_Release(&idx); return NULL; }
    Py_ssize_t h = width > 0 ? idx.len / width : 0, row = 1 + (width * bits + 7) / 8;
    if (width < 1 || idx.len != h * width || out.len != h * row) {
        PyBuffer_Release(&idx); PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "png_rows: arrays of mismatched sizes");
        return NULL;
    }
    const uint8_t *I = idx.buf;
    uint8_t *O = out.buf;
    Py_BEGIN_ALLOW_THREADS
    int per_byte = 8 / bits;
    for (Py_ssize_t y = 0; y < h; y++) {
        const uint8_t *src = I + y * width;
        uint8_t *dst = O + y * row;
        *dst++ = 0;  /* filter type 0: none (what libpng advises for palette images) */
        if (bits == 8) {
            memcpy(dst, src, width);
            continue;
        }
        Py_ssize_t x = 0;
        for (; x + per_byte <= width; x += per_byte) {
            unsigned v = 0;
            for (int q = 0; q < per_byte; q++) v = (v << bits) | src[x + q];
            *dst++ = (uint8_t)v;
        }
        if (x < width) {  /* the last byte of the row, padded with zero bits */
            unsigned v = 0;
            int q = 0;
            for (; x < width; x++, q++) v = (v << bits) | src[x];
            *dst = (uint8_t)(v << (bits * (per_byte - q)));
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&idx); PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------ */
/* refine_rows(points f64[n*w*3] or u8 (bytes), bytes, width, first, last,  */
/*             centres f64[k*3],                                            */
/*             axis f64[3], labels u8 or i32 [n*w] in/out,                  */
/*             weights f64[(last-first)*w], blur f64[2R+1], sweeps,         */
/*             nearest i32[(last-first)*w] or None)                          */
/* Improves dithered labels by direct search (Analoui and Allebach's direct  */
/* binary search, with colours): each pixel of rows first..last-1 of the     */
/* span of n rows takes, among its undithered nearest colour and its eight   */
/* neighbours' colours, the one that most lowers                             */
/*     |G * (x - q)|^2 + sum_p weight_p |x_p - q_p|^2,                       */
/* G a Gaussian blur (the eye, seen from a distance: the colour of an area), */
/* the second term each pixel's own error (grain). Only the pixels of        */
/* first..last change; the rows around them are context. With the blur's    */
/* autocorrelation g2 = G * G (separable: `blur` is its 1-D kernel, radius   */
/* R) and a = g2 * e kept up to date, a change d at pixel p costs            */
/*     -2 d.a_p + g2(0) |d|^2 + weight_p (|d|^2 - 2 d.e_p).                  */
/* Outside the span the error counts as zero. Opaque colours only: D = 3,   */
/* or 6 (blend's points, as doubles; the length of `axis` says which).       */
/* `nearest`: the refined pixels' undithered colours (searched for if None). */
/* ------------------------------------------------------------------------ */

TEMPLATE int32_t label_at(const uint8_t *L8, const int32_t *L32, Py_ssize_t i)
{
    return L8 ? (int32_t)L8[i] : L32[i];
}

/* Each of the m points' nearest centre (3 or 6 coordinates), into near. */
/* Pixel i's channel ch of the points: bytes (RGB) when P8 is given, else doubles. */
static inline double point_at(const uint8_t *P8, const double *P, Py_ssize_t i, int ch, int dim)
{
    return P8 ? (double)P8[3 * i + ch] : P[dim * i + ch];
}

static void nearest_of_points(const Search *search, const uint8_t *P8, const double *P, Py_ssize_t m,
                              int32_t *near, int dim)
{
    Py_ssize_t hint = -1;
    for (Py_ssize_t i = 0; i < m; i++) {
        double d2, q[MAX_DIM];
        for (int ch = 0; ch < dim; ch++) q[ch] = point_at(P8, P, i, ch, dim);
        hint = dim == 3 ? search_nearest(search, q, hint, &d2, 3) : search_nearest(search, q, hint, &d2, 6);
        near[i] = search->order[hint];
    }
}

/* near: the undithered colour of each pixel of rows first..last-1. The error e (all n rows) and its
 * blurred view a (rows first..last-1) in floats: they are what the search keeps per pixel (a thread's
 * strip, 18 bytes a pixel in 3 coordinates, 30 in 6), and a float's precision is far below a colour level.
 * row: dim * w floats. */
TEMPLATE void refine_span_dim(const uint8_t *P8, const double *P, Py_ssize_t n, Py_ssize_t w, Py_ssize_t first,
                               Py_ssize_t last, const double *C, uint8_t *L8, int32_t *L32, const double *weight,
                               const double *blur, int radius, int sweeps, float *e, float *a, float *row,
                               const int32_t *near, const int dim)
{
    const int R = radius;
    double g0 = blur[R] * blur[R];
    for (Py_ssize_t i = 0; i < n * w; i++) {
        const double *c = C + dim * label_at(L8, L32, i);
        for (int ch = 0; ch < dim; ch++) e[dim * i + ch] = (float)(point_at(P8, P, i, ch, dim) - c[ch]);
    }
    /* a = g2 * e, on the rows that may change (only those are read): a row at a time, down the columns
     * into row, then along it. */
    for (Py_ssize_t y = first; y < last; y++) {
        for (Py_ssize_t x = 0; x < w; x++) {
            double s[MAX_DIM] = {0};
            for (int t = -R; t <= R; t++) {
                Py_ssize_t yy = y + t;
                if (yy < 0 || yy >= n) continue;
                for (int ch = 0; ch < dim; ch++) s[ch] += blur[t + R] * e[dim * (yy * w + x) + ch];
            }
            for (int ch = 0; ch < dim; ch++) row[dim * x + ch] = (float)s[ch];
        }
        for (Py_ssize_t x = 0; x < w; x++) {
            double s[MAX_DIM] = {0};
            for (int t = -R; t <= R; t++) {
                Py_ssize_t xx = x + t;
                if (xx < 0 || xx >= w) continue;
                for (int ch = 0; ch < dim; ch++) s[ch] += blur[t + R] * row[dim * xx + ch];
            }
            for (int ch = 0; ch < dim; ch++) a[dim * ((y - first) * w + x) + ch] = (float)s[ch];
        }
    }
    for (int sweep = 0; sweep < sweeps; sweep++) {
        Py_ssize_t changed = 0;
        for (Py_ssize_t y = first; y < last; y++)
            for (Py_ssize_t x = 0; x < w; x++) {
                Py_ssize_t i = y * w + x;
                int32_t cur = label_at(L8, L32, i), best = cur;
                double best_cost = -1e-9, lam = weight[i - first * w];
                const double *cc = C + dim * cur;
                const float *ai = a + dim * (i - first * w), *ei = e + dim * i;
                int32_t cand[9];
                int m = 0;
                cand[m++] = near[i - first * w];
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++) {
                        Py_ssize_t yy = y + dy, xx = x + dx;
                        if ((dy || dx) && yy >= 0 && yy < n && xx >= 0 && xx < w) cand[m++] = label_at(L8, L32, yy * w + xx);
                    }
                for (int j = 0; j < m; j++) {
                    int32_t c = cand[j];
                    if (c == cur || c == best) continue;
                    double d[MAX_DIM], dd = 0, da = 0, de = 0;
                    for (int ch = 0; ch < dim; ch++) {
                        d[ch] = C[dim * c + ch] - cc[ch];
                        dd += d[ch] * d[ch]; da += d[ch] * ai[ch]; de += d[ch] * ei[ch];
                    }
                    double cost = -2 * da + g0 * dd + lam * (dd - 2 * de);
                    if (cost < best_cost) { best_cost = cost; best = c; }
                }
                if (best == cur) continue;
                double d[MAX_DIM];
                for (int ch = 0; ch < dim; ch++) {
                    d[ch] = C[dim * best + ch] - cc[ch];
                    e[dim * i + ch] -= (float)d[ch];
                }
                if (L8) L8[i] = (uint8_t)best; else L32[i] = best;
                changed++;
                Py_ssize_t y0 = y - R < first ? first : y - R, y1 = y + R >= last ? last - 1 : y + R;
                Py_ssize_t x0 = x - R < 0 ? 0 : x - R, x1 = x + R >= w ? w - 1 : x + R;
                for (Py_ssize_t yy = y0; yy <= y1; yy++) {
                    double by = blur[yy - y + R];
                    for (Py_ssize_t xx = x0; xx <= x1; xx++) {
                        double g = by * blur[xx - x + R];
                        float *aj = a + dim * ((yy - first) * w + xx);
                        for (int ch = 0; ch < dim; ch++) aj[ch] -= (float)(g * d[ch]);
                    }
                }
            }
        if (!changed) break;
    }
}

static void refine_span3(const uint8_t *P8, const double *P, Py_ssize_t n, Py_ssize_t w, Py_ssize_t first,
                         Py_ssize_t last, const double *C, uint8_t *L8, int32_t *L32, const double *weight,
                         const double *blur, int radius, int sweeps, float *e, float *a, float *row,
                         const int32_t *near)
{
    refine_span_dim(P8, P, n, w, first, last, C, L8, L32, weight, blur, radius, sweeps, e, a, row, near, 3);
}

static void refine_span6(const double *P, Py_ssize_t n, Py_ssize_t w, Py_ssize_t first, Py_ssize_t last,
                         const double *C, uint8_t *L8, int32_t *L32, const double *weight, const double *blur,
                         int radius, int sweeps, float *e, float *a, float *row, const int32_t *near)
{
    refine_span_dim(NULL, P, n, w, first, last, C, L8, L32, weight, blur, radius, sweeps, e, a, row, near, 6);
}

static PyObject *refine_rows(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *o_pts, *o_cent, *o_axis, *o_lab, *o_weight, *o_blur, *o_near;
    Py_ssize_t width, first, last;
    int sweeps, bytes;
    if (!PyArg_ParseTuple(args, "OpnnnOOOOOiO", &o_pts, &bytes, &width, &first, &last, &o_cent, &o_axis, &o_lab,
                          &o_weight, &o_blur, &sweeps, &o_near))
        return NULL;
    Py_buffer pts = {0}, cent = {0}, axis = {0}, lab = {0}, weight = {0}, blur = {0}, given = {0};
    int has_near = o_near != Py_None;
    int ok = get_buf(o_pts, &pts, 0, "points") == 0 && get_buf(o_cent, &cent, 0, "centres") == 0
             && get_buf(o_axis, &axis, 0, "axis") == 0 && get_buf(o_lab, &lab, 1, "labels") == 0
             && get_buf(o_weight, &weight, 0, "weights") == 0 && get_buf(o_blur, &blur, 0, "blur") == 0
             && (!has_near || get_buf(o_near, &given, 0, "nearest") == 0);
    /* 3 coordinates (sRGB, as bytes or doubles, or another space's), or 6 (blend's: doubles) */
    int dim = ok && axis.len == 6 * (Py_ssize_t)sizeof(double) && !bytes ? 6 : 3;
    Py_ssize_t k = ok ? rows(&cent, dim, "centres") : -1;
    Py_ssize_t all = !ok ? -1 : bytes ? (pts.len % 3 ? -1 : pts.len / 3) : rows(&pts, dim, "points");
    Py_ssize_t n = width > 0 && all >= 0 ? all / width : -1;
    Py_ssize_t taps = ok ? blur.len / (Py_ssize_t)sizeof(double) : 0;
    Py_ssize_t item = n > 0 ? lab.len / (n * width) : 0;
    if (ok && (k < 1 || n < 1 || all != n * width || axis.len != dim * (Py_ssize_t)sizeof(double) || first < 0
               || last > n || first >= last || (item != 1 && item != 4) || lab.len != n * width * item
               || weight.len != (last - first) * width * (Py_ssize_t)sizeof(double) || taps % 2 == 0
               || blur.len != taps * (Py_ssize_t)sizeof(double)
               || (has_near && given.len != (last - first) * width * (Py_ssize_t)sizeof(int32_t)))) {
        PyErr_SetString(PyExc_ValueError, "refine_rows: arrays of mismatched sizes");
        ok = 0;
    }
    if (ok) {
        const uint8_t *L8c = item == 1 ? lab.buf : NULL;
        const int32_t *L32c = item == 4 ? lab.buf : NULL;
        for (Py_ssize_t i = 0; i < n * width && ok; i++) {
            int32_t v = L8c ? L8c[i] : L32c[i];
            if (v < 0 || v >= k) { PyErr_SetString(PyExc_ValueError, "refine_rows: a label outside the palette"); ok = 0; }
        }
        const int32_t *G = has_near ? given.buf : NULL;
        for (Py_ssize_t i = 0; G && i < (last - first) * width && ok; i++)
            if (G[i] < 0 || G[i] >= k) { PyErr_SetString(PyExc_ValueError, "refine_rows: a nearest label outside the palette"); ok = 0; }
    }
    /* e (n rows), a (last - first rows) and row (one), in one block */
    float *e = ok ? malloc(sizeof(float) * dim * (n + last - first + 1) * width) : NULL;
    float *a = e ? e + dim * n * width : NULL, *row = a ? a + dim * (last - first) * width : NULL;
    /* the undithered colours: as given, or searched for here */
    int32_t *found = ok && !has_near ? malloc(sizeof(int32_t) * (last - first) * width) : NULL;
    Search search = {0};
    if (ok && (!e || !a || !row || (!has_near && (!found || search_init(&search, cent.buf, k, axis.buf, dim) < 0)))) {
        PyErr_NoMemory();
        ok = 0;
    }
    if (ok) {
        uint8_t *L8 = item == 1 ? lab.buf : NULL;
        int32_t *L32 = item == 4 ? lab.buf : NULL;
        const uint8_t *P8 = bytes ? pts.buf : NULL;
        const double *P = bytes ? NULL : pts.buf;
        Py_BEGIN_ALLOW_THREADS
        if (!has_near)
            nearest_of_points(&search, P8 ? P8 + 3 * first * width : NULL, P ? P + dim * first * width : NULL,
                              (last - first) * width, found, dim);
        if (dim == 3)
            refine_span3(P8, P, n, width, first, last, cent.buf, L8, L32, weight.buf, blur.buf, (int)(taps / 2),
                         sweeps, e, a, row, has_near ? given.buf : found);
        else
            refine_span6(P, n, width, first, last, cent.buf, L8, L32, weight.buf, blur.buf, (int)(taps / 2), sweeps,
                         e, a, row, has_near ? given.buf : found);
        Py_END_ALLOW_THREADS
    }
    search_free(&search); free(e); free(found);
    if (pts.obj) PyBuffer_Release(&pts);
    if (cent.obj) PyBuffer_Release(&cent);
    if (axis.obj) PyBuffer_Release(&axis);
    if (lab.obj) PyBuffer_Release(&lab);
    if (weight.obj) PyBuffer_Release(&weight);
    if (blur.obj) PyBuffer_Release(&blur);
    if (given.obj) PyBuffer_Release(&given);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------ */
/* smoothness_rows(rgb u8[(r+2)*w*3], width, out f64[r*w], floor, scale)     */
/* How smooth the source is around each pixel of a strip of r rows (given    */
/* with a row of context above and below): v, the variance of the grey       */
/* level (the mean of R, G, B) over the 3x3 pixels around it (the edge       */
/* columns repeated), gives floor + (1 - floor) / (1 + v / scale).           */
/* ------------------------------------------------------------------------ */

/* One pixel's weight from its 3x3 grey levels (rows g0, g1, g2; columns l, x, r), summed row by row, left to right. */
TEMPLATE double smooth_at(const double *g0, const double *g1, const double *g2, Py_ssize_t l, Py_ssize_t x,
                          Py_ssize_t r, double floor_weight, double scale)
{
    const double *rows[3] = {g0, g1, g2};
    double sum = 0, sum_sq = 0;
    for (int dy = 0; dy < 3; dy++) {
        double a = rows[dy][l], b = rows[dy][x], c = rows[dy][r];
        sum += a; sum_sq += a * a;
        sum += b; sum_sq += b * b;
        sum += c; sum_sq += c * c;
    }
    double mean = sum / 9, v = sum_sq / 9 - mean * mean;
    return floor_weight + (1 - floor_weight) / (1 + (v > 0 ? v : 0) / scale);
}

static PyObject *smoothness_rows(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *o_rgb, *o_out;
    Py_ssize_t width;
    double floor_weight, scale;
    if (!PyArg_ParseTuple(args, "OnOdd", &o_rgb, &width, &o_out, &floor_weight, &scale)) return NULL;
    Py_buffer rgb = {0}, out = {0};
    if (get_buf(o_rgb, &rgb, 0, "rgb") < 0) return NULL;
    if (get_buf(o_out, &out, 1, "out") < 0) { PyBuffer_Release(&rgb); return NULL; }
    Py_ssize_t w = width, n = w > 0 ? rgb.len / (3 * w) : 0, r = n - 2;
    if (w < 1 || r < 1 || rgb.len != n * w * 3 || out.len != r * w * (Py_ssize_t)sizeof(double) || scale <= 0) {
        PyBuffer_Release(&rgb); PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "smoothness_rows: arrays of mismatched sizes");
        return NULL;
    }
    const uint8_t *P = rgb.buf;
    double *O = out.buf;
    /* each pixel's grey level once (not nine times), in three rows that turn; summed in the same order */
    double *grey = malloc(sizeof(double) * 3 * w);
    if (!grey) { PyBuffer_Release(&rgb); PyBuffer_Release(&out); return PyErr_NoMemory(); }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t y = 0; y < n; y++) {
        double *row = grey + (y % 3) * w;
        for (Py_ssize_t x = 0; x < w; x++) {
            const uint8_t *p = P + 3 * (y * w + x);
            row[x] = (p[0] + p[1] + p[2]) / 3.0;
        }
        if (y < 2) continue;
        Py_ssize_t yo = y - 2; /* the output row, centred on input row y - 1 */
        const double *g0 = grey + (yo % 3) * w, *g1 = grey + ((yo + 1) % 3) * w, *g2 = grey + ((yo + 2) % 3) * w;
        double *o = O + yo * w;
        /* the edge columns repeated; the columns between need no clamping (the same sums, in the same order) */
        o[0] = smooth_at(g0, g1, g2, 0, 0, w > 1 ? 1 : 0, floor_weight, scale);
        for (Py_ssize_t x = 1; x < w - 1; x++) o[x] = smooth_at(g0, g1, g2, x - 1, x, x + 1, floor_weight, scale);
        if (w > 1) o[w - 1] = smooth_at(g0, g1, g2, w - 2, w - 1, w - 1, floor_weight, scale);
    }
    Py_END_ALLOW_THREADS
    free(grey);
    PyBuffer_Release(&rgb); PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------ */
/* release_memory() -> bool                                                 */
/* Hands the heap's free pages back to the system (glibc: malloc_trim, over  */
/* every arena). Freed memory otherwise stays resident: the k-means          */
/* temporaries under what the encoder allocates next, and in each worker     */
/* thread's own arena the strips it dithered. False where there is no such   */
/* call (not glibc) or nothing was released.                                 */
/* ------------------------------------------------------------------------ */

static PyObject *release_memory(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(args))
{
    int released = 0;
#ifdef __GLIBC__
    Py_BEGIN_ALLOW_THREADS
    released = malloc_trim(0);
    Py_END_ALLOW_THREADS
#endif
    return PyBool_FromLong(released);
}

static PyMethodDef methods[] = {
    {"colour_bits", colour_bits, METH_VARARGS, "Marks the colours of RGB pixels in a 2**24-bit set."},
    {"colour_ranks", colour_ranks, METH_VARARGS, "Running counts of a colour set, and its colours in order."},
    {"colour_rows", colour_rows, METH_VARARGS, "Each pixel's row in the colour set, through an optional table."},
    {"png_rows", png_rows, METH_VARARGS, "Raw indexed-PNG rows: filter byte and packed indices."},
    {"release_memory", release_memory, METH_NOARGS, "Free heap memory handed back to the system (malloc_trim)."},
    {"assign", assign, METH_VARARGS, "Nearest centre per point, with optional Lloyd sums."},
    {"lloyd", lloyd, METH_VARARGS, "Runs of Lloyd's iterations on a small weighted point set."},
    {"kmeanspp", kmeanspp, METH_VARARGS, "Greedy weighted k-means++ seeding."},
    {"dither_rows", dither_rows, METH_VARARGS, "Dithering a strip of rows: classic, selective or ordered."},
    {"refine_rows", refine_rows, METH_VARARGS, "Dithered labels improved by direct search against a blurred view."},
    {"smoothness_rows", smoothness_rows, METH_VARARGS, "How flat the grey level is over 3x3 around each pixel."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels",
                                    "Compiled kernels of kcolors (see kernels.py).", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__kernels(void)
{
    PyObject *m = PyModule_Create(&module);
    /* Which form of the bit counts and inlining this build took: gnu, msvc or plain (see Portability). */
    if (m && PyModule_AddStringConstant(m, "BUILTINS", KC_BUILTINS) < 0) Py_CLEAR(m);
    return m;
}
