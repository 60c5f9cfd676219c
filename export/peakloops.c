/* Throughput of the multiply loops the int8 and fp32 kernels are built from,
 * on this core: the peak arithmetic of docs/export.md ("Is int8 >= 2.5x fp32
 * reachable on AVX2?"). Independent chains, so throughput, not latency,
 * bounds each loop; the clock from a dependent add chain (1 cycle per add).
 * Not used by the project's code. Build and run (needs AVX-512 VNNI for the
 * vpdpbusd lines):  gcc -O2 -march=native export/peakloops.c -o /tmp/peakloops && /tmp/peakloops
 */
#include <stdio.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_THREAD_CPUTIME_ID,&t);return t.tv_sec+t.tv_nsec*1e-9;}
#define N 100000000L
#define R10(x) x x x x x x x x x x
static double clockloop(void){long n=N;double t=now();
 __asm__ volatile("1:\n" R10("add $1,%%rax\n") "dec %0\njnz 1b\n":"+r"(n)::"rax");
 return 10.0*N/(now()-t)/1e9;}  /* 10 dependent adds a loop: 10 cycles (dec/jnz run beside) */
#define LOOP(body,clob) ({long n=N/10;double t=now(); __asm__ volatile("1:\n" body "dec %0\njnz 1b\n":"+r"(n)::clob); now()-t;})
int main(void){
 double g=0; for(int i=0;i<3;i++){double c=clockloop(); if(c>g)g=c;}
 printf("clock (dependent add chain): %.2f GHz\n", g);
 double t;
 t=LOOP(R10("vpmaddubsw %%ymm14,%%ymm15,%%ymm0\nvpmaddwd %%ymm13,%%ymm0,%%ymm0\nvpaddd %%ymm0,%%ymm1,%%ymm1\n"
            "vpmaddubsw %%ymm14,%%ymm15,%%ymm2\nvpmaddwd %%ymm13,%%ymm2,%%ymm2\nvpaddd %%ymm2,%%ymm3,%%ymm3\n"
            "vpmaddubsw %%ymm14,%%ymm15,%%ymm4\nvpmaddwd %%ymm13,%%ymm4,%%ymm4\nvpaddd %%ymm4,%%ymm5,%%ymm5\n"
            "vpmaddubsw %%ymm14,%%ymm15,%%ymm6\nvpmaddwd %%ymm13,%%ymm6,%%ymm6\nvpaddd %%ymm6,%%ymm7,%%ymm7\n"),"xmm0");
 printf("AVX2 vpmaddubsw+vpmaddwd+vpaddd ymm triples: %.2f G/s = %.2f per cycle -> %.1f int8 MACs/cycle\n", 4*N/t/1e9, 4*N/t/1e9/g, 32*4*N/t/1e9/g);
 t=LOOP(R10("vpmaddubsw %%zmm14,%%zmm15,%%zmm0\nvpmaddwd %%zmm13,%%zmm0,%%zmm0\nvpaddd %%zmm0,%%zmm1,%%zmm1\n"
            "vpmaddubsw %%zmm14,%%zmm15,%%zmm2\nvpmaddwd %%zmm13,%%zmm2,%%zmm2\nvpaddd %%zmm2,%%zmm3,%%zmm3\n"
            "vpmaddubsw %%zmm14,%%zmm15,%%zmm4\nvpmaddwd %%zmm13,%%zmm4,%%zmm4\nvpaddd %%zmm4,%%zmm5,%%zmm5\n"
            "vpmaddubsw %%zmm14,%%zmm15,%%zmm6\nvpmaddwd %%zmm13,%%zmm6,%%zmm6\nvpaddd %%zmm6,%%zmm7,%%zmm7\n"),"xmm0");
 printf("AVX-512BW vpmaddubsw+vpmaddwd+vpaddd zmm triples: %.2f G/s = %.2f per cycle -> %.1f int8 MACs/cycle\n", 4*N/t/1e9, 4*N/t/1e9/g, 64*4*N/t/1e9/g);
 t=LOOP(R10("vpmaddwd %%ymm14,%%ymm15,%%ymm0\nvpaddd %%ymm0,%%ymm1,%%ymm1\nvpmaddwd %%ymm14,%%ymm15,%%ymm2\nvpaddd %%ymm2,%%ymm3,%%ymm3\n"
            "vpmaddwd %%ymm14,%%ymm15,%%ymm4\nvpaddd %%ymm4,%%ymm5,%%ymm5\nvpmaddwd %%ymm14,%%ymm15,%%ymm6\nvpaddd %%ymm6,%%ymm7,%%ymm7\n"),"xmm0");
 printf("AVX2 vpmaddwd+vpaddd ymm (U8U8 on int16): %.2f G/s = %.2f per cycle -> %.1f MACs/cycle\n", 4*N/t/1e9, 4*N/t/1e9/g, 16*4*N/t/1e9/g);
 t=LOOP(R10("vpdpbusd %%zmm14,%%zmm15,%%zmm0\nvpdpbusd %%zmm14,%%zmm15,%%zmm1\nvpdpbusd %%zmm14,%%zmm15,%%zmm2\nvpdpbusd %%zmm14,%%zmm15,%%zmm3\nvpdpbusd %%zmm14,%%zmm15,%%zmm4\n"
            "vpdpbusd %%zmm14,%%zmm15,%%zmm5\nvpdpbusd %%zmm14,%%zmm15,%%zmm6\nvpdpbusd %%zmm14,%%zmm15,%%zmm7\nvpdpbusd %%zmm14,%%zmm15,%%zmm8\nvpdpbusd %%zmm14,%%zmm15,%%zmm9\n"),"xmm0");
 printf("AVX-512 VNNI vpdpbusd zmm (10 chains): %.2f G/s = %.2f per cycle -> %.1f MACs/cycle\n", 10*N/t/1e9, 10*N/t/1e9/g, 64*10*N/t/1e9/g);
 t=LOOP(R10("vpdpbusd %%ymm14,%%ymm15,%%ymm0\nvpdpbusd %%ymm14,%%ymm15,%%ymm1\nvpdpbusd %%ymm14,%%ymm15,%%ymm2\nvpdpbusd %%ymm14,%%ymm15,%%ymm3\nvpdpbusd %%ymm14,%%ymm15,%%ymm4\n"
            "vpdpbusd %%ymm14,%%ymm15,%%ymm5\nvpdpbusd %%ymm14,%%ymm15,%%ymm6\nvpdpbusd %%ymm14,%%ymm15,%%ymm7\nvpdpbusd %%ymm14,%%ymm15,%%ymm8\nvpdpbusd %%ymm14,%%ymm15,%%ymm9\n"),"xmm0");
 printf("AVX-512VL VNNI vpdpbusd ymm (10 chains): %.2f G/s = %.2f per cycle -> %.1f MACs/cycle\n", 10*N/t/1e9, 10*N/t/1e9/g, 32*10*N/t/1e9/g);
 t=LOOP(R10("vfmadd231ps %%ymm14,%%ymm15,%%ymm0\nvfmadd231ps %%ymm14,%%ymm15,%%ymm1\nvfmadd231ps %%ymm14,%%ymm15,%%ymm2\nvfmadd231ps %%ymm14,%%ymm15,%%ymm3\nvfmadd231ps %%ymm14,%%ymm15,%%ymm4\n"
            "vfmadd231ps %%ymm14,%%ymm15,%%ymm5\nvfmadd231ps %%ymm14,%%ymm15,%%ymm6\nvfmadd231ps %%ymm14,%%ymm15,%%ymm7\nvfmadd231ps %%ymm14,%%ymm15,%%ymm8\nvfmadd231ps %%ymm14,%%ymm15,%%ymm9\n"),"xmm0");
 printf("FMA vfmadd231ps ymm (10 chains): %.2f G/s = %.2f per cycle -> %.1f MACs/cycle\n", 10*N/t/1e9, 10*N/t/1e9/g, 8*10*N/t/1e9/g);
 t=LOOP(R10("vfmadd231ps %%zmm14,%%zmm15,%%zmm0\nvfmadd231ps %%zmm14,%%zmm15,%%zmm1\nvfmadd231ps %%zmm14,%%zmm15,%%zmm2\nvfmadd231ps %%zmm14,%%zmm15,%%zmm3\nvfmadd231ps %%zmm14,%%zmm15,%%zmm4\n"
            "vfmadd231ps %%zmm14,%%zmm15,%%zmm5\nvfmadd231ps %%zmm14,%%zmm15,%%zmm6\nvfmadd231ps %%zmm14,%%zmm15,%%zmm7\nvfmadd231ps %%zmm14,%%zmm15,%%zmm8\nvfmadd231ps %%zmm14,%%zmm15,%%zmm9\n"),"xmm0");
 printf("AVX-512 vfmadd231ps zmm (10 chains): %.2f G/s = %.2f per cycle -> %.1f MACs/cycle\n", 10*N/t/1e9, 10*N/t/1e9/g, 16*10*N/t/1e9/g);
 return 0;}
