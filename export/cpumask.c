/* Hide CPU features from this process with Linux CPUID faulting.
 *
 * Loaded with LD_PRELOAD. Its constructor asks the kernel to make the CPUID
 * instruction fault in this thread (arch_prctl ARCH_SET_CPUID 0; the setting
 * is inherited by threads and forks, reset by execve, where LD_PRELOAD loads
 * this again) and handles the SIGSEGV each CPUID then raises: it runs the real
 * CPUID with faulting briefly off, clears the feature bits named by the
 * profile in ROVER_CPUMASK (see profile_masks), writes the registers back and
 * steps over the 2-byte instruction. Everything else runs natively, on the
 * real CPU, with the kernels that software picks for the reduced feature set.
 *
 * A program's own SIGSEGV handler (Python's faulthandler, a JIT's) does not
 * displace this one: sigaction() and signal() for SIGSEGV are interposed, the
 * program's handler is recorded and reported back as if installed, and every
 * SIGSEGV that is not a faulting CPUID goes to it (or, with none, to the
 * default action: a real crash still crashes).
 *
 * Only for benchmarks and tests (export/cpumask.py builds and loads it).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>
#include <sys/syscall.h>

#define ARCH_SET_CPUID 0x1012

/* One mask per (leaf, subleaf, register): bits cleared from what CPUID returns. */
struct mask { uint32_t leaf, subleaf; int reg; uint32_t bits; };
enum { EAX, EBX, ECX, EDX };

#define BIT(n) (1u << (n))
/* AVX-512 and its extensions in leaf 7.0 (Intel SDM vol. 2A, CPUID, table 3-8). */
#define L7_EBX_AVX512 (BIT(16) | BIT(17) | BIT(21) | BIT(26) | BIT(27) | BIT(28) | BIT(30) | BIT(31))
#define L7_ECX_AVX512 (BIT(1) | BIT(6) | BIT(11) | BIT(12) | BIT(14))
#define L7_EDX_AVX512 (BIT(2) | BIT(3) | BIT(8) | BIT(23))
#define L7_EDX_AMX (BIT(22) | BIT(24) | BIT(25))
/* Leaf 7.1: AVX-VNNI (EAX 4), AVX512_BF16 (EAX 5), AVX-IFMA (EAX 23);
 * AVX-VNNI-INT8 (EDX 4), AVX-NE-CONVERT (EDX 5), AVX-VNNI-INT16 (EDX 10). */
#define L71_EAX_VNNI (BIT(4) | BIT(5) | BIT(23))
#define L71_EDX_VNNI (BIT(4) | BIT(5) | BIT(10))
/* Leaf 0xD.0 EAX: the XSAVE state components the CPU supports; 5-7 are the
 * AVX-512 opmask and ZMM registers, 17-18 AMX tiles. */
#define LD_EAX_AVX512 (BIT(5) | BIT(6) | BIT(7) | BIT(17) | BIT(18))

static const struct mask avx2_masks[] = {
    {7, 0, EBX, L7_EBX_AVX512}, {7, 0, ECX, L7_ECX_AVX512}, {7, 0, EDX, L7_EDX_AVX512 | L7_EDX_AMX},
    {7, 1, EAX, L71_EAX_VNNI}, {7, 1, EDX, L71_EDX_VNNI}, {0xd, 0, EAX, LD_EAX_AVX512},
};
/* AVX-512 without any VNNI (a Skylake-SP): AVX-512 F/CD/BW/DQ/VL stay. */
static const struct mask avx512_novnni_masks[] = {
    {7, 0, ECX, BIT(11)}, {7, 0, EDX, BIT(2) | L7_EDX_AMX}, {7, 1, EAX, L71_EAX_VNNI}, {7, 1, EDX, L71_EDX_VNNI},
};

static const struct mask *masks;
static size_t n_masks;

static long raw_arch_prctl(long code, long arg)
{
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "0"((long)SYS_arch_prctl), "D"(code), "S"(arg) : "rcx", "r11", "memory");
    return ret;
}

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
static sigaction_fn real_sigaction;
static int active;            /* the mask is on: our handler owns SIGSEGV */
static struct sigaction app;  /* the program's own SIGSEGV disposition (SIG_DFL at first) */

static void forward(int sig, siginfo_t *info, void *ctx)
{
    if (app.sa_flags & SA_SIGINFO) {
        app.sa_sigaction(sig, info, ctx);
        return;
    }
    if (app.sa_handler != SIG_DFL && app.sa_handler != SIG_IGN) {
        app.sa_handler(sig);
        return;
    }
    /* Default action: uninstall ourselves; a fault re-executes and dies, a sent signal is re-raised. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    real_sigaction(SIGSEGV, &dfl, NULL);
    if (info->si_code <= 0)
        raise(sig);
}

static void on_segv(int sig, siginfo_t *info, void *ctx_)
{
    ucontext_t *ctx = ctx_;
    greg_t *r = ctx->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)r[REG_RIP];
    /* A faulting CPUID is a general protection fault (SI_KERNEL); only then is the ip
     * known to point at an instruction that was fetched, so it is safe to read. */
    if (info->si_code != SI_KERNEL || ip[0] != 0x0f || ip[1] != 0xa2) {
        forward(sig, info, ctx_);
        return;
    }
    uint32_t leaf = (uint32_t)r[REG_RAX], subleaf = (uint32_t)r[REG_RCX];
    uint32_t out[4];
    raw_arch_prctl(ARCH_SET_CPUID, 1);
    __asm__ volatile("cpuid" : "=a"(out[EAX]), "=b"(out[EBX]), "=c"(out[ECX]), "=d"(out[EDX]) : "0"(leaf), "2"(subleaf));
    raw_arch_prctl(ARCH_SET_CPUID, 0);
    for (size_t i = 0; i < n_masks; i++)
        if (masks[i].leaf == leaf && masks[i].subleaf == subleaf)
            out[masks[i].reg] &= ~masks[i].bits;
    r[REG_RAX] = out[EAX];
    r[REG_RBX] = out[EBX];
    r[REG_RCX] = out[ECX];
    r[REG_RDX] = out[EDX];
    r[REG_RIP] += 2;
}

static sigaction_fn get_real_sigaction(void)
{
    if (!real_sigaction)
        real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
    return real_sigaction;
}

/* The program's view of SIGSEGV while the mask is on: its own handler, never ours. */
int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    if (sig != SIGSEGV || !active)
        return get_real_sigaction()(sig, act, old);
    if (old)
        *old = app;
    if (act)
        app = *act;
    return 0;
}

sighandler_t signal(int sig, sighandler_t handler)
{
    struct sigaction act, old;
    memset(&act, 0, sizeof act);
    act.sa_handler = handler;
    act.sa_flags = SA_RESTART;
    sigemptyset(&act.sa_mask);
    if (sigaction(sig, &act, &old) != 0)
        return SIG_ERR;
    return old.sa_handler; /* a union with sa_sigaction: the same pointer either way */
}

static void die(const char *msg)
{
    (void)!write(2, msg, strlen(msg));
    _exit(70);
}

__attribute__((constructor)) static void cpumask_init(void)
{
    const char *profile = getenv("ROVER_CPUMASK");
    if (!profile || !*profile)
        return;
    if (!strcmp(profile, "avx2")) {
        masks = avx2_masks;
        n_masks = sizeof avx2_masks / sizeof *avx2_masks;
    } else if (!strcmp(profile, "avx512-novnni")) {
        masks = avx512_novnni_masks;
        n_masks = sizeof avx512_novnni_masks / sizeof *avx512_novnni_masks;
    } else {
        die("cpumask: ROVER_CPUMASK must be avx2 or avx512-novnni\n");
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    memset(&app, 0, sizeof app);
    app.sa_handler = SIG_DFL;
    if (!get_real_sigaction() || real_sigaction(SIGSEGV, &sa, NULL) != 0)
        die("cpumask: sigaction(SIGSEGV) failed\n");
    if (raw_arch_prctl(ARCH_SET_CPUID, 0) != 0)
        die("cpumask: this CPU or kernel has no CPUID faulting (arch_prctl ARCH_SET_CPUID: see cpuid_fault in /proc/cpuinfo)\n");
    active = 1;
}
