/* Peak arithmetic of this CPU's AVX-512 units: independent FMA (fp32), VDPBF16PS (bf16)
 * and VPDPBUSD (int8 VNNI) instructions on registers only, on N threads.
 * Usage: cpu_peak fp32|bf16|int8 THREADS ITERATIONS  ->  prints "<ops per second>".
 * Built and run by bench/cpu_peak.py. 12 accumulators hide each instruction's latency. */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ACC 12
static long iterations;
static int kind; /* 0 fp32, 1 bf16, 2 int8 */
static volatile float sink;

static void *work(void *arg) {
    (void)arg;
    __m512 f[ACC];
    __m512i q[ACC];
    for (int i = 0; i < ACC; i++) {
        f[i] = _mm512_set1_ps(0.001f * i);
        q[i] = _mm512_set1_epi32(i);
    }
    const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-6f);
    const __m512bh ah = _mm512_cvtne2ps_pbh(a, a), bh = _mm512_cvtne2ps_pbh(b, b);
    const __m512i ai = _mm512_set1_epi8(1), bi = _mm512_set1_epi8(-1);
    for (long n = 0; n < iterations; n++) {
        if (kind == 0) {
            for (int i = 0; i < ACC; i++) f[i] = _mm512_fmadd_ps(a, f[i], b);
        } else if (kind == 1) {
            for (int i = 0; i < ACC; i++) f[i] = _mm512_dpbf16_ps(f[i], ah, bh);
        } else {
            for (int i = 0; i < ACC; i++) q[i] = _mm512_dpbusd_epi32(q[i], ai, bi);
        }
    }
    float total = 0;
    for (int i = 0; i < ACC; i++)
        total += _mm512_reduce_add_ps(f[i]) + (float)_mm512_reduce_add_epi32(q[i]);
    sink = total;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    kind = !strcmp(argv[1], "fp32") ? 0 : !strcmp(argv[1], "bf16") ? 1 : 2;
    int threads = atoi(argv[2]);
    iterations = atol(argv[3]);
    pthread_t ids[256];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int t = 0; t < threads; t++) pthread_create(&ids[t], NULL, work, NULL);
    for (int t = 0; t < threads; t++) pthread_join(ids[t], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double seconds = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
    /* ops per instruction: fp32 FMA 16 lanes x 2; bf16 16 lanes x 2 pairs x 2; int8 16 x 4 x 2 */
    double per_instruction = kind == 0 ? 32 : kind == 1 ? 64 : 128;
    printf("%.6e\n", per_instruction * ACC * (double)iterations * threads / seconds);
    return 0;
}
