// Winograd F(4x4, 3x3) convolution (Lavin & Gray, "Fast Algorithms for Convolutional Neural
// Networks", CVPR 2016) for 3x3, stride 1, dilation 1, groups 1 convs with any zero padding:
// UperNet's 512-channel 3x3s, which as im2col + sgemm already run near the sgemm peak, so the
// only way up is fewer multiplications: 36 per 4x4 output tile and (c_out, c_in) pair instead of 144.
//
// Per output tile (4x4 outputs, read from the 6x6 input window d at (4*ty - pad, 4*tx - pad)):
//
//     Y[o] = A^T [ sum_i U[o,i] .* V[i] ] A,   U[o,i] = G g[o,i] G^T,   V[i] = B^T d[i] B
//
// with .* elementwise on 6x6 matrices, so for each of the 36 positions xi of the 6x6 transform
// domain the sum over i is one GEMM  M[xi] (c_out, tiles) = U[xi] (c_out, c_in) x V[xi] (c_in, tiles).
// The matrices are those of the interpolation points 0, 1, -1, 2, -2 and infinity (the standard,
// best-conditioned choice for F(4,3); Lavin & Gray's, also cuDNN's and NNPACK's):
//
//            | 4   0  -5   0   1   0 |          | 1/4     0     0   |
//            | 0  -4  -4   1   1   0 |          | -1/6  -1/6  -1/6  |          | 1  1   1  1   1  0 |
//     B^T =  | 0   4  -4  -1   1   0 |     G =  | -1/6   1/6  -1/6  |   A^T =  | 0  1  -1  2  -2  0 |
//            | 0  -2  -1   2   1   0 |          | 1/24  1/12   1/6  |          | 0  1   1  4   4  0 |
//            | 0   2  -1  -2   1   0 |          | 1/24 -1/12   1/6  |          | 0  1  -1  8  -8  1 |
//            | 0   4   0  -5   0   1 |          | 0      0     1    |
//
// Rounding: U is computed in double and rounded once; V, the GEMMs and the output transform are
// fp32. The transforms' large entries (4, 5, 8) make the error larger than the direct sum's:
// measured by tests/test_winograd.c (uniform data, odd map sizes), the worst |y - y_exact| /
// sum|w||x| per output is <= 1.1e-6 on UperNet's shapes (512 -> 512, 1024 -> 512) and <= 2.6e-6 on
// tiny maps, against <= 2e-7 for the fp32 im2col path: ~10x. The test asserts 1e-5 (and an RMS
// bound); one wrong matrix entry (1/24 -> 1/25 in G, 5 -> 4 in B^T, 8 -> 7 in A^T) gives 1.4e-3 to
// 5e-2. The tiny InternImage goldens with every 3x3 through Winograd stay within their 1e-4 /
// 5e-4. F(6,3) needs more points (such as +-1/2) and larger transform entries, and the error
// grows quickly with the tile size (Barabasz et al., "Error analysis and improving the accuracy of
// Winograd convolution for deep neural networks", 2020); it is not used.
//
// Under a bf16 context (conv layers with more than 32 outputs, gemm_bf16.h) the 36 GEMMs take U
// rounded to bf16 once (kept in the model's weight store) and V rounded per call, accumulating in
// fp32: the transforms' amplification then acts on bf16 rounding, 2e-2 relative RMS error per
// layer against 2.2e-3 for bf16 im2col (tests/test_bf16.c), for about 1.4x the fp32 Winograd's speed.
//
// Blocking and threads: a work item is (block of up to WG_TILES tiles in raster order, slice of
// output channels); its inputs are transformed chunk by chunk of input channels into V
// (36, nc, tiles), the 36 GEMMs accumulate into M (36, co_slice, tiles) (beta 1 after the first
// chunk), then M is output-transformed, with bias and the optional PReLU, into y. Block, slice and
// chunk bounds depend only on the shapes, each output is written by one item, BLAS runs single-
// threaded per item: bit-identical results for any thread count.
#include "nn.h"
#include "gemm_bf16.h"
#include "prof.h"
#include <stdlib.h>
#include <string.h>
#include <omp.h>

#define WG_TILES 256                // tiles per block: OpenBLAS packs U[xi] once per GEMM, so each
                                    // packed weight serves `tiles` FMAs. Measured on the GEMM alone
                                    // (512 x 512 x tiles, 1 thread): 72, 81, 86, 73 GFLOP/s at 64,
                                    // 128, 256, 512 tiles (512: B no longer fits L2)
#define WG_V_FLOATS (2 << 20)       // input-channel chunk: V (36, nc, tiles) at most 8 MiB
#define WG_V_FLOATS_BF16 (8 << 20)  // under bf16 at most 32 MiB: each chunk re-reads and re-writes
                                    // M (36, cos, tiles), 18.9 MiB for 512 outputs, and the bf16
                                    // GEMMs are fast enough for that to show. bench_bf16 2 3 on a
                                    // Zen 4 host, bf16 Winograd GFLOP/s (direct-conv FLOPs), 8 MiB
                                    // vs 32 MiB: fpn_bottleneck 2048->512 (10 chunks vs 3) 842-850
                                    // vs 927-930, fpn_convs 512->512 (3 vs 1) 745-799 vs 849-903
#define WG_MIN_ITEMS 4              // split c_out into slices until there are this many items
#define WG_HROWS 8                  // pad_rows' cache of x-interpolated source rows (wg_hcache)
#define WL 16                       // tiles per vector pass of the transforms (one zmm of lanes)

int conv2d_winograd_shape(const conv2d *c) {
    return c->k == 3 && c->stride == 1 && c->dilation == 1 && c->groups == 1 && c->pad >= 0 &&
           c->c_in > 0 && c->c_out > 0;
}

// U (36, c_out, c_in) = G g G^T for the rows o in [o0, o1), in double then rounded once. Input
// channels go in runs of WT_RUN so every store of U is a contiguous vector (36 planes apart).
#define WT_RUN 64
static void weight_transform(const conv2d *c, int o0, int o1, float *u) {
    static const double G[6][3] = {{1.0 / 4, 0, 0},          {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                   {-1.0 / 6, 1.0 / 6, -1.0 / 6}, {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                   {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};
    size_t plane = (size_t)c->c_out * c->c_in;
    double t[6][3][WT_RUN];   // G g of each input channel of the run
    for (int o = o0; o < o1; o++)
        for (int i0 = 0; i0 < c->c_in; i0 += WT_RUN) {
            int n = c->c_in - i0 < WT_RUN ? c->c_in - i0 : WT_RUN;
            const float *g = c->weight + ((size_t)o * c->c_in + i0) * 9;   // (n, 3, 3)
            for (int r = 0; r < 6; r++)
                for (int j = 0; j < 3; j++)
                    for (int i = 0; i < n; i++)
                        t[r][j][i] = G[r][0] * g[i * 9 + j] + G[r][1] * g[i * 9 + 3 + j] +
                                     G[r][2] * g[i * 9 + 6 + j];
            for (int r = 0; r < 6; r++)
                for (int s = 0; s < 6; s++) {
                    float *dst = u + (r * 6 + s) * plane + (size_t)o * c->c_in + i0;
                    for (int i = 0; i < n; i++)
                        dst[i] = (float)(t[r][0][i] * G[s][0] + t[r][1][i] * G[s][1] + t[r][2][i] * G[s][2]);
                }
        }
}

// At model load there is no context yet, so one thread.
int conv2d_winograd_prepare(conv2d *c, err *e) {
    if (!conv2d_winograd_shape(c) || !c->weight) return OODSEG_OK;
    free(c->winograd_u);
    c->winograd_u = err_malloc(e, sizeof(float) * 36 * (size_t)c->c_out * c->c_in, "Winograd weights");
    if (!c->winograd_u) return OODSEG_E_NOMEM;
    weight_transform(c, 0, c->c_out, c->winograd_u);
    return OODSEG_OK;
}

// V = B^T d B for WL horizontally adjacent tiles, from the six input rows split into column
// phases (see pad_rows): column j of tile l's window is phase j % 4 at index l + j / 4, so every
// load is a contiguous vector. Writes the first n lanes of row xi at v + xi*vs.
NN_TARGET_CLONES
static void input_tiles(const float *p, int64_t pl, int n, float *v, int64_t vs) {
    float t[36][WL];   // B^T d: t[k*6 + j] is row k of B^T d, column j
    for (int j = 0; j < 6; j++) {
        const float *q = p + (j & 3) * pl + (j >> 2);
        const int64_t rs = 4 * pl;
        #pragma omp simd
        for (int l = 0; l < WL; l++) {
            float d0 = q[l], d1 = q[rs + l], d2 = q[2 * rs + l], d3 = q[3 * rs + l], d4 = q[4 * rs + l],
                  d5 = q[5 * rs + l];
            t[0 * 6 + j][l] = 4.0f * d0 - 5.0f * d2 + d4;
            t[1 * 6 + j][l] = -4.0f * (d1 + d2) + (d3 + d4);
            t[2 * 6 + j][l] = 4.0f * (d1 - d2) + (d4 - d3);
            t[3 * 6 + j][l] = 2.0f * (d3 - d1) + (d4 - d2);
            t[4 * 6 + j][l] = 2.0f * (d1 - d3) + (d4 - d2);
            t[5 * 6 + j][l] = 4.0f * d1 - 5.0f * d3 + d5;
        }
    }
    for (int k = 0; k < 6; k++) {
        float r[6][WL];   // row k of (B^T d) B
        #pragma omp simd
        for (int l = 0; l < WL; l++) {
            float d0 = t[k * 6][l], d1 = t[k * 6 + 1][l], d2 = t[k * 6 + 2][l];
            float d3 = t[k * 6 + 3][l], d4 = t[k * 6 + 4][l], d5 = t[k * 6 + 5][l];
            r[0][l] = 4.0f * d0 - 5.0f * d2 + d4;
            r[1][l] = -4.0f * (d1 + d2) + (d3 + d4);
            r[2][l] = 4.0f * (d1 - d2) + (d4 - d3);
            r[3][l] = 2.0f * (d3 - d1) + (d4 - d2);
            r[4][l] = 2.0f * (d1 - d3) + (d4 - d2);
            r[5][l] = 4.0f * d1 - 5.0f * d3 + d5;
        }
        for (int s = 0; s < 6; s++) {
            float *dst = v + (k * 6 + s) * vs;
            if (n == WL) {   // the common case: one vector store per row
                #pragma omp simd
                for (int l = 0; l < WL; l++) dst[l] = r[s][l];
            } else {
                for (int l = 0; l < n; l++) dst[l] = r[s][l];
            }
        }
    }
}

// Y = A^T m A for WL tiles: row xi of the transform domain at m + xi*ms (WL lanes); out (16, WL),
// row r*4 + j the output (r, j) of each tile.
NN_TARGET_CLONES
static void output_tiles(const float *m, int64_t ms, float out[16][WL]) {
    float t[4][6][WL];   // A^T m: t[r][s]
    for (int s = 0; s < 6; s++) {
        #pragma omp simd
        for (int l = 0; l < WL; l++) {
            float m0 = m[(0 * 6 + s) * ms + l], m1 = m[(1 * 6 + s) * ms + l], m2 = m[(2 * 6 + s) * ms + l];
            float m3 = m[(3 * 6 + s) * ms + l], m4 = m[(4 * 6 + s) * ms + l], m5 = m[(5 * 6 + s) * ms + l];
            float a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
            t[0][s][l] = m0 + a + c;
            t[1][s][l] = b + 2.0f * d;
            t[2][s][l] = a + 4.0f * c;
            t[3][s][l] = b + 8.0f * d + m5;
        }
    }
    for (int r = 0; r < 4; r++) {
        #pragma omp simd
        for (int l = 0; l < WL; l++) {
            float m0 = t[r][0][l], m1 = t[r][1][l], m2 = t[r][2][l];
            float m3 = t[r][3][l], m4 = t[r][4][l], m5 = t[r][5][l];
            float a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
            out[r * 4 + 0][l] = m0 + a + c;
            out[r * 4 + 1][l] = b + 2.0f * d;
            out[r * 4 + 2][l] = a + 4.0f * c;
            out[r * 4 + 3][l] = b + 8.0f * d + m5;
        }
    }
}

// The shape-only plan of one conv (see the header comment).
typedef struct wg_plan {
    int h, w, ho, wo, ntx, nty, pad;
    int64_t ntiles, tb, nblocks;   // tb tiles per block
    int cc, cos, nslices;          // input channels per chunk, output channels per slice
    int64_t pl, prs;               // phase length ntx + WL + 1 (a vector pass of WL tiles from
                                   // any tile of the row stays inside), padded row length 4*pl
    int64_t v_sz, m_sz, p_sz;      // per-thread scratch, floats
} wg_plan;

static void make_plan(const conv2d *c, int h, int w, int ho, int wo, int bf16, wg_plan *p) {
    p->h = h, p->w = w, p->ho = ho, p->wo = wo, p->pad = c->pad;
    p->ntx = (wo + 3) / 4, p->nty = (ho + 3) / 4;
    p->ntiles = (int64_t)p->ntx * p->nty;
    p->tb = p->ntiles < WG_TILES ? p->ntiles : WG_TILES;
    p->nblocks = (p->ntiles + p->tb - 1) / p->tb;
    p->cc = (int)((bf16 ? WG_V_FLOATS_BF16 : WG_V_FLOATS) / (36 * p->tb));
    if (p->cc < 16) p->cc = 16;
    if (bf16) p->cc &= ~1;   // the bf16 GEMM starts a chunk's weights at a pair boundary
    if (p->cc > c->c_in) p->cc = c->c_in;
    // Few blocks (small maps): slices of >= 64 output channels (multiples of 16) so that threads
    // share the work; each slice transforms the block's inputs again (cheap next to its GEMMs).
    int ns = 1;
    while (p->nblocks * ns < WG_MIN_ITEMS && c->c_out / (ns + 1) >= 64) ns++;
    p->cos = (c->c_out + ns - 1) / ns;
    if (ns > 1) p->cos = (p->cos + 15) / 16 * 16;
    p->nslices = (c->c_out + p->cos - 1) / p->cos;
    p->pl = (int64_t)p->ntx + WL + 1;
    p->prs = 4 * p->pl;
    p->v_sz = 36 * (int64_t)p->cc * p->tb;
    p->m_sz = 36 * (int64_t)p->cos * p->tb;
    p->p_sz = 7 * p->prs + (WG_HROWS + 1) * (int64_t)w;   // one padded row, the phases of six, pad_rows' t
}

// The conv's input as the channel concatenation of parts (c, h, w): a part at the input size is
// read as it is; a smaller one is upsampled to it row by row as it is read (resize_bilinear,
// align_corners 0, bit for bit: resize_bilinear_hrow and _vmix, the functions resize_bilinear
// itself runs), so the concatenation is never stored.
typedef struct wg_part {
    const float *x;
    int c, h, w;
    int *xi, *yi;     // resize tables (resize_bilinear_table), NULL when read as it is
    float *xl, *yl;
} wg_part;

// Source rows of an upsampled part interpolated along x (resize_bilinear_hrow), kept while one
// pad_rows call reads them (WG_HROWS: six output rows need at most 7 distinct source rows).
typedef struct wg_hcache { int row[WG_HROWS], n; float *t; } wg_hcache;   // t: (WG_HROWS, w)

static const float *hrow_of(const wg_part *q, const float *xc, int sy, int w, wg_hcache *hc) {
    for (int k = 0; k < hc->n; k++) if (hc->row[k] == sy) return hc->t + (size_t)k * w;
    float *t = hc->t + (size_t)hc->n * w;
    resize_bilinear_hrow(xc + (size_t)sy * q->w, q->xi, q->xl, w, t);
    hc->row[hc->n++] = sy;
    return t;
}

// Row iy of channel ch of the input into r (p->w floats).
static void input_row(const wg_part *parts, int ch, const wg_plan *p, int iy, wg_hcache *hc, float *r) {
    const wg_part *q = parts;
    while (ch >= q->c) ch -= q->c, q++;
    const float *xc = q->x + (size_t)ch * q->h * q->w;
    if (!q->xi) { memcpy(r, xc + (size_t)iy * p->w, sizeof(float) * (size_t)p->w); return; }
    const float *t0 = hrow_of(q, xc, q->yi[2 * iy], p->w, hc), *t1 = hrow_of(q, xc, q->yi[2 * iy + 1], p->w, hc);
    resize_bilinear_vmix(t0, t1, q->yl[2 * iy], q->yl[2 * iy + 1], p->w, r);
}

// Rows iy0 .. iy0+5 of input channel ch, zero-padded (line: one padded row, prs; t: (WG_HROWS +
// 1) * w of scratch), then split into 4 column phases: dst (6, 4, pl), dst[r][f][m] = x[iy0 +
// r][4*m + f - pad], so tile tx's window starts at index tx of each phase.
static void pad_rows(const wg_part *parts, int ch, const wg_plan *p, int iy0, float *line, float *t,
                     float *dst) {
    int64_t a = p->pad < p->prs ? p->pad : p->prs;                   // image columns: [a, b)
    int64_t b = (int64_t)p->pad + p->w < p->prs ? (int64_t)p->pad + p->w : p->prs;
    wg_hcache hc = {.n = 0, .t = t + p->w};
    for (int r = 0; r < 6; r++) {
        float *d = dst + r * p->prs;
        int iy = iy0 + r;
        if (iy < 0 || iy >= p->h || b <= a) { memset(d, 0, sizeof(float) * (size_t)p->prs); continue; }
        float *row = t;
        input_row(parts, ch, p, iy, &hc, row);
        memset(line, 0, sizeof(float) * (size_t)a);
        memcpy(line + a, row, sizeof(float) * (size_t)(b - a));
        memset(line + b, 0, sizeof(float) * (size_t)(p->prs - b));
        float *f0 = d, *f1 = d + p->pl, *f2 = d + 2 * p->pl, *f3 = d + 3 * p->pl;
        #pragma omp simd   // (without it GCC -O2 left this scalar: 2.8 % of InternImage-T's forward)
        for (int64_t m = 0; m < p->pl; m++) {   // an interleaved group of 4: vectorised as permutes
            f0[m] = line[4 * m];
            f1[m] = line[4 * m + 1];
            f2[m] = line[4 * m + 2];
            f3[m] = line[4 * m + 3];
        }
    }
}

// Inputs channels c0 .. c0+nc-1 of the tiles [t0, t0 + nt) into v (36, nc, nt); prow: scratch
// (p_sz, see make_plan).
static void transform_inputs(const wg_part *parts, const wg_plan *p, int c0, int nc, int64_t t0,
                             int64_t nt, float *v, float *prow) {
    int64_t vs = (int64_t)nc * nt;
    float *rs = prow + 7 * p->prs;   // input_row's scratch
    for (int ci = 0; ci < nc; ci++) {
        int64_t t = t0;
        while (t < t0 + nt) {   // one run of tiles within a tile row at a time
            int ty = (int)(t / p->ntx), tx = (int)(t % p->ntx);
            int64_t run = p->ntx - tx < t0 + nt - t ? p->ntx - tx : t0 + nt - t;
            pad_rows(parts, c0 + ci, p, 4 * ty - p->pad, prow, rs, prow + p->prs);
            for (int64_t l = 0; l < run; l += WL)
                input_tiles(prow + p->prs + tx + l, p->pl, (int)(run - l < WL ? run - l : WL),
                            v + (size_t)ci * nt + (t - t0) + l, vs);
            t += run;
        }
    }
}

// M (36, nco, nt) of output channels co0.. into y, plus bias, then PReLU (as prelu_span: v >= 0 ? v
// : a*v, so the fused result equals conv then prelu_inplace bit for bit).
static void transform_outputs(const float *m, const wg_plan *p, int co0, int nco, int64_t t0,
                              int64_t nt, const float *bias, const float *slope, float *y) {
    int64_t hwo = (int64_t)p->ho * p->wo;
    float mt[36][WL], out[16][WL];
    for (int o = 0; o < nco; o++) {
        float b = bias ? bias[co0 + o] : 0.0f, a = slope ? slope[co0 + o] : 0.0f;
        float *yo = y + (size_t)(co0 + o) * hwo;
        for (int64_t l0 = 0; l0 < nt; l0 += WL) {
            int n = (int)(nt - l0 < WL ? nt - l0 : WL);
            const float *src = m + (size_t)o * nt + l0;
            int64_t ms = (int64_t)nco * nt;
            if (n < WL) {   // the block's last lanes: copy so the vector pass reads no further
                for (int xi = 0; xi < 36; xi++) {
                    memcpy(mt[xi], src + xi * ms, sizeof(float) * (size_t)n);
                    memset(mt[xi] + n, 0, sizeof(float) * (size_t)(WL - n));
                }
                src = &mt[0][0], ms = WL;
            }
            output_tiles(src, ms, out);
            if (bias)
                for (int q = 0; q < 16; q++)
                    for (int l = 0; l < WL; l++) out[q][l] += b;
            if (slope)
                for (int q = 0; q < 16; q++)
                    for (int l = 0; l < WL; l++) out[q][l] = out[q][l] >= 0.0f ? out[q][l] : a * out[q][l];
            for (int l = 0; l < n; l++) {
                int64_t t = t0 + l0 + l;
                int oy0 = (int)(t / p->ntx) * 4, ox0 = (int)(t % p->ntx) * 4;
                int nr = p->ho - oy0 < 4 ? p->ho - oy0 : 4, nj = p->wo - ox0 < 4 ? p->wo - ox0 : 4;
                for (int r = 0; r < nr; r++) {
                    float *yr = yo + (size_t)(oy0 + r) * p->wo + ox0;
                    for (int j = 0; j < nj; j++) yr[j] = out[r * 4 + j][l];
                }
            }
        }
    }
}

// One work item: output channels [co0, co0 + nco) of the tiles [t0, t0 + nt).
// With pu (U as bf16 rows, (36 * c_out, kp) pairs) the 36 GEMMs are bf16 ones.
static void run_item(const nn_ctx *ctx, const conv2d *c, const float *u, const uint32_t *pu,
                     const wg_plan *p, const wg_part *parts, int co0, int nco, int64_t t0, int64_t nt,
                     const float *slope, float *y, float *v, float *m, float *prow) {
    size_t plane = (size_t)c->c_out * c->c_in;   // one xi of U (36, c_out, c_in)
    int64_t kp = (c->c_in + 1) / 2;
    for (int c0 = 0; c0 < c->c_in; c0 += p->cc) {
        int nc = c->c_in - c0 < p->cc ? c->c_in - c0 : p->cc;
        transform_inputs(parts, p, c0, nc, t0, nt, v, prow);
        for (int xi = 0; xi < 36; xi++) {
            const float *vx = v + (size_t)xi * nc * nt;
            float *mx = m + (size_t)xi * nco * nt;
            if (pu)
                nn_gemm_bf16_a(ctx, nco, (int)nt, nc, pu + ((size_t)xi * c->c_out + co0) * kp + c0 / 2, kp,
                               vx, nt, mx, nt, c0 != 0);
            else
                nn_sgemm(0, 0, nco, (int)nt, nc, 1.0f, u + xi * plane + (size_t)co0 * c->c_in + c0, c->c_in,
                         vx, (int)nt, c0 ? 1.0f : 0.0f, mx, (int)nt);
        }
    }
    transform_outputs(m, p, co0, nco, t0, nt, c->bias, slope, y);
}

static int forward_parts(const nn_ctx *ctx, const conv2d *c, const wg_part *parts, int h, int w,
                         const float *slope, float *y, int ho, int wo, err *e) {
    wg_plan p;
    int bf16 = nn_bf16_layer(ctx, c->c_out);
    PROF_FLOP(ctx, conv2d_flop(c, ho, wo));   // the direct conv's count (nn/prof.h)
    make_plan(c, h, w, ho, wo, bf16, &p);
    int nth = ctx->threads;
    const float *u = c->winograd_u;
    float *own_u = NULL;
    if (!u) {   // not prepared (conv2d_winograd_prepare): transform the weights for this call only
        own_u = err_malloc(e, sizeof(float) * 36 * (size_t)c->c_out * c->c_in, "Winograd weights");
        if (!own_u) return OODSEG_E_NOMEM;
        #pragma omp parallel for schedule(static) num_threads(nth)
        for (int o = 0; o < c->c_out; o++) weight_transform(c, o, o + 1, own_u);
        u = own_u;
    }
    // bf16: U rounded once to bf16 rows, kept in the model's store when U is the prepared one (a
    // per-call U is packed per call: the store is keyed by address, which a freed U would reuse).
    const uint32_t *pu = NULL;
    uint32_t *own_pu = NULL;
    if (bf16) {
        nn_ctx solo = *ctx;
        if (own_u) solo.bf16_weights = NULL;
        pu = nn_bf16_weights_for(&solo, u, 36 * c->c_out, c->c_in, NN_BF16_ROWS, &own_pu, e);
        if (!pu) { free(own_u); return e->code; }
    }
    int64_t per_th = p.v_sz + p.m_sz + p.p_sz, items = p.nblocks * p.nslices;
    float *buf = err_malloc(e, sizeof(float) * (size_t)per_th * nth, "Winograd buffers");
    if (!buf) { free(own_u); free(own_pu); return OODSEG_E_NOMEM; }
    #pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
    for (int64_t it = 0; it < items; it++) {
        float *v = buf + (size_t)omp_get_thread_num() * per_th;   // (36, cc, tb)
        float *m = v + p.v_sz;                                    // (36, cos, tb)
        float *prow = m + p.m_sz;                                 // see make_plan's p_sz
        int64_t b = it / p.nslices, t0 = b * p.tb;
        int co0 = (int)(it % p.nslices) * p.cos;
        int nco = c->c_out - co0 < p.cos ? c->c_out - co0 : p.cos;
        int64_t nt = p.ntiles - t0 < p.tb ? p.ntiles - t0 : p.tb;
        run_item(ctx, c, u, pu, &p, parts, co0, nco, t0, nt, slope, y, v, m, prow);
    }
    free(buf);
    free(own_u);
    free(own_pu);
    return OODSEG_OK;
}

int conv2d_winograd_forward(const nn_ctx *ctx, const conv2d *c, const float *x, int h, int w,
                            const float *slope, float *y, int ho, int wo, err *e) {
    wg_part part = {.x = x, .c = c->c_in, .h = h, .w = w};
    return forward_parts(ctx, c, &part, h, w, slope, y, ho, wo, e);
}

int conv2d_winograd_forward_cat(const nn_ctx *ctx, const conv2d *c, const conv_cat_part *in, int n,
                                int h, int w, float *y, err *e) {
    int ho = conv2d_out_size(h, c->k, c->stride, c->pad, c->dilation);
    int wo = conv2d_out_size(w, c->k, c->stride, c->pad, c->dilation);
    int total = 0;
    for (int k = 0; k < n; k++) total += in[k].c > 0 ? in[k].c : 0;
    if (n < 1 || n > 8 || total != c->c_in || !conv2d_winograd_shape(c) || ho <= 0 || wo <= 0)
        return err_set(e, OODSEG_E_INTERNAL, "Winograd concat: %d parts of %d channels for a conv of "
                       "%d inputs (k %d, stride %d) at %dx%d", n, total, c->c_in, c->k, c->stride, w, h);
    wg_part parts[8];
    int *idx = NULL;
    float *lam = NULL;
    int nup = 0;
    for (int k = 0; k < n; k++) nup += in[k].h != h || in[k].w != w;
    if (nup) {
        idx = err_malloc(e, sizeof(int) * 2 * (size_t)(h + w) * nup, "Winograd resize tables");
        lam = idx ? err_malloc(e, sizeof(float) * 2 * (size_t)(h + w) * nup, "Winograd resize tables") : NULL;
        if (!lam) { free(idx); return OODSEG_E_NOMEM; }
    }
    for (int k = 0, j = 0; k < n; k++) {
        parts[k] = (wg_part){.x = in[k].x, .c = in[k].c, .h = in[k].h, .w = in[k].w};
        if (in[k].h == h && in[k].w == w) continue;
        wg_part *q = &parts[k];
        q->yi = idx + (size_t)j * 2 * (h + w), q->xi = q->yi + 2 * h;
        q->yl = lam + (size_t)j * 2 * (h + w), q->xl = q->yl + 2 * h;
        resize_bilinear_table(in[k].h, h, 0, q->yi, q->yl);
        resize_bilinear_table(in[k].w, w, 0, q->xi, q->xl);
        j++;
    }
    int rc = forward_parts(ctx, c, parts, h, w, NULL, y, ho, wo, e);
    free(idx);
    free(lam);
    return rc;
}
