/* runtime.cpp: the block scheduler of cudasim.
 *
 * Blocks run one after another (x fastest). Inside a block every CUDA thread is a fiber on the
 * calling OS thread. A pass resumes each runnable fiber once, in the chosen thread order; a fiber
 * runs until it waits at __syncthreads() or a warp primitive, returns, or fails. After a pass:
 *  - warps whose waiting lanes are complete are resolved (shuffle values exchanged) and run again;
 *  - when every live thread waits at one __syncthreads() call site the barrier opens (a new phase,
 *    a new permutation in random order); any other state is barrier divergence or deadlock.
 * The context switch is a hand-written x86-64 stack switch (callee-saved registers + rsp), or
 * ucontext's swapcontext where that is unavailable or CUDASIM_UCONTEXT=1. Fiber stacks are mmap'ed
 * once (CUDASIM_STACK_SIZE bytes, PROT_NONE guard page below) and reused by every block; a guard
 * page hit, or any other segmentation fault in a kernel thread, is turned into an error by a SIGSEGV
 * handler (not in ASan builds: ASan reports those itself).
 * Launches are not re-entrant: the Python side calls in with the GIL held.
 */
#include "cudasim.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#if !defined(__x86_64__) && !defined(CUDASIM_UCONTEXT)
#define CUDASIM_UCONTEXT 1
#endif
#if defined(CUDASIM_UCONTEXT) && CUDASIM_UCONTEXT
#include <ucontext.h>
#define CUDASIM_USE_UCONTEXT 1
#else
#define CUDASIM_USE_UCONTEXT 0
#endif
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define CUDASIM_ASAN 1
#else
#define CUDASIM_ASAN 0
#endif
#ifndef CUDASIM_STACK_SIZE
#define CUDASIM_STACK_SIZE (64 * 1024)
#endif
#define CUDASIM_MAX_DYNAMIC_SHARED (227 * 1024)
#define CUDASIM_MAX_THREADS 1024

/* Error codes; _errors.py maps them to exception classes. */
enum { ERR_NONE = 0, ERR_ASSERT = 1, ERR_DIVERGENCE = 2, ERR_DEADLOCK = 3, ERR_STACK = 4, ERR_TRAP = 5,
       ERR_WARP = 6, ERR_CONFIG = 7, ERR_MEMORY = 8, ERR_ADDRESS = 9 };

extern "C" {
struct cudasim_error {
    int code;
    unsigned int block[3];
    unsigned int thread[3];
    char message[2048];
};
cudasim_builtins cudasim_bi;
alignas(64) char cudasim_dynamic_shared[CUDASIM_MAX_DYNAMIC_SHARED];
/* Bounds of the static __shared__ section, defined by the linker (weak: a module may have none). */
extern char __start_cudasim_shared[] __attribute__((weak, visibility("hidden")));
extern char __stop_cudasim_shared[] __attribute__((weak, visibility("hidden")));
/* Generated for each module by the Python loader. */
extern const cudasim_kernel_entry cudasim_kernel_table[];
extern const int cudasim_kernel_table_size;
}

namespace {

enum State { RUNNABLE, AT_BARRIER, AT_WARP, DONE };

struct Fiber {
    void* sp;                     /* saved stack pointer while switched out (asm switch) */
#if CUDASIM_USE_UCONTEXT
    ucontext_t context;
#endif
    char* stack;                  /* lowest usable byte; the guard page lies just below */
    void* fake_stack;             /* ASan bookkeeping for the switch annotations */
    int state;
    int op;                       /* barrier op (0..3) or warp kind while waiting */
    const char* file;             /* call site it waits at */
    int line;
    unsigned int mask;            /* warp primitive operands and result */
    int arg, width, size;
    unsigned long long value, result;
};

Fiber* g_fibers;
int g_fiber_count;                /* fibers with a stack so far (grows to the largest block) */
size_t g_page;
bool g_stacks_dirty;              /* ASan: abandoned fibers left poisoned frames behind */
Fiber* volatile g_current;
const cudasim_kernel_entry* g_kernel;
const unsigned char* g_args;
cudasim_error* g_err;
int g_threads;                    /* threads per block */
int g_done, g_at_barrier, g_at_warp;
uint3 g_thread_index[CUDASIM_MAX_THREADS];
int g_order;                      /* 0 forward, 1 reverse, 2 random */
int g_perm[CUDASIM_MAX_THREADS];
unsigned long long g_rng;
#if CUDASIM_USE_UCONTEXT
ucontext_t g_scheduler_context;
#else
void* g_scheduler_sp;
#endif
void* g_scheduler_fake_stack;
const void* g_main_stack_bottom;
size_t g_main_stack_size;

/* ---- context switch ----------------------------------------------------------------------- */
#if !CUDASIM_USE_UCONTEXT
extern "C" void cudasim_switch_stack(void** save_sp, void* next_sp) __attribute__((visibility("hidden")));
/* Saves the callee-saved registers on the current stack, stores rsp in *save_sp, loads next_sp
 * and pops the registers saved there; `ret` then continues where that stack left off. */
__asm__(
    ".pushsection .text\n"
    ".p2align 4\n"
    ".hidden cudasim_switch_stack\n"
    ".type cudasim_switch_stack, @function\n"
    "cudasim_switch_stack:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n"
    ".size cudasim_switch_stack, .-cudasim_switch_stack\n"
    ".popsection\n");
#endif

inline void asan_start_switch(void** fake_stack, const void* bottom, size_t size) {
#if CUDASIM_ASAN
    __sanitizer_start_switch_fiber(fake_stack, bottom, size);
#else
    (void)fake_stack; (void)bottom; (void)size;
#endif
}
inline void asan_finish_switch(void* fake_stack, const void** bottom, size_t* size) {
#if CUDASIM_ASAN
    __sanitizer_finish_switch_fiber(fake_stack, bottom, size);
#else
    (void)fake_stack; (void)bottom; (void)size;
#endif
}

/* Scheduler side: run fiber f until it yields, returns or fails. */
inline void resume(Fiber* f) {
    asan_start_switch(&g_scheduler_fake_stack, f->stack, CUDASIM_STACK_SIZE);
#if CUDASIM_USE_UCONTEXT
    swapcontext(&g_scheduler_context, &f->context);
#else
    cudasim_switch_stack(&g_scheduler_sp, f->sp);
#endif
    asan_finish_switch(g_scheduler_fake_stack, nullptr, nullptr);
}

/* Fiber side: hand control back to the scheduler; `final` when this fiber never runs again. */
void yield_to_scheduler(Fiber* f, bool final) {
    asan_start_switch(final ? nullptr : &f->fake_stack, g_main_stack_bottom, g_main_stack_size);
#if CUDASIM_USE_UCONTEXT
    swapcontext(&f->context, &g_scheduler_context);
#else
    cudasim_switch_stack(&f->sp, g_scheduler_sp);
#endif
    asan_finish_switch(f->fake_stack, &g_main_stack_bottom, &g_main_stack_size);
}

[[noreturn]] void fiber_main() {
    asan_finish_switch(nullptr, &g_main_stack_bottom, &g_main_stack_size);
    Fiber* f = g_current;
    g_kernel->run(g_args);
    f->state = DONE;
    ++g_done;
    yield_to_scheduler(f, true);
    __builtin_unreachable();
}

/* Sets fiber f up to start fiber_main on its next resume. */
void prepare(Fiber* f) {
    f->state = RUNNABLE;
    f->fake_stack = nullptr;
#if CUDASIM_USE_UCONTEXT
    getcontext(&f->context);
    f->context.uc_stack.ss_sp = f->stack;
    f->context.uc_stack.ss_size = CUDASIM_STACK_SIZE;
    f->context.uc_link = nullptr;
    makecontext(&f->context, (void (*)())fiber_main, 0);
#else
    /* Top of stack: [0 (fake return address)] [fiber_main] [6 zeroed registers] <- sp. After the
     * six pops and `ret`, rsp = top - 8, the alignment a called function expects (16n + 8). */
    void** sp = (void**)(((uintptr_t)(f->stack + CUDASIM_STACK_SIZE)) & ~(uintptr_t)15);
    *--sp = nullptr;
    *--sp = (void*)&fiber_main;
    for (int i = 0; i < 6; ++i) *--sp = nullptr;
    f->sp = sp;
#endif
}

bool ensure_fibers(int n) {
    if (!g_fibers) {
        g_page = (size_t)sysconf(_SC_PAGESIZE);
        g_fibers = (Fiber*)calloc(CUDASIM_MAX_THREADS, sizeof(Fiber));
        if (!g_fibers) return false;
    }
    for (; g_fiber_count < n; ++g_fiber_count) {
        size_t bytes = g_page + CUDASIM_STACK_SIZE;
        void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (base == MAP_FAILED) return false;
        if (mprotect(base, g_page, PROT_NONE) != 0) return false;
        g_fibers[g_fiber_count].stack = (char*)base + g_page;
    }
#if CUDASIM_ASAN
    if (g_stacks_dirty) {
        for (int i = 0; i < g_fiber_count; ++i) ASAN_UNPOISON_MEMORY_REGION(g_fibers[i].stack, CUDASIM_STACK_SIZE);
        g_stacks_dirty = false;
    }
#endif
    return true;
}

/* ---- errors ----------------------------------------------------------------------------- */
int index_of(const Fiber* f) { return (int)(f - g_fibers); }

/* Records the first error of the launch: "kernel 'k', block (..), thread (..): <message>". */
void record(int code, int thread, const char* fmt, ...) {
    if (g_err->code) return;
    g_err->code = code;
    const uint3 b = cudasim_bi.block_idx, t = g_thread_index[thread];
    g_err->block[0] = b.x; g_err->block[1] = b.y; g_err->block[2] = b.z;
    g_err->thread[0] = t.x; g_err->thread[1] = t.y; g_err->thread[2] = t.z;
    int used = snprintf(g_err->message, sizeof g_err->message, "kernel '%s', block (%u, %u, %u), thread (%u, %u, %u): ",
                        g_kernel->name, b.x, b.y, b.z, t.x, t.y, t.z);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err->message + used, sizeof g_err->message - used, fmt, ap);
    va_end(ap);
}

/* Fiber side: the launch is over; never resumed again. */
[[noreturn]] void abandon(Fiber* f) {
    f->state = DONE;
    g_stacks_dirty = true;
    yield_to_scheduler(f, true);
    __builtin_unreachable();
}

const char* describe_op(int state, int op) {
    static const char* const warp[] = {"__syncwarp", "__shfl_sync", "__shfl_up_sync", "__shfl_down_sync",
                                       "__shfl_xor_sync", "__ballot_sync", "__any_sync", "__all_sync"};
    static const char* const barrier[] = {"__syncthreads", "__syncthreads_count", "__syncthreads_and",
                                          "__syncthreads_or"};
    if (state == AT_WARP) return warp[op];
    if (state == AT_BARRIER) return barrier[op];
    return "nothing";
}

inline bool same_site(const Fiber* a, const Fiber* b) {
    return a->line == b->line && (a->file == b->file || strcmp(a->file, b->file) == 0);
}

/* ---- thread order ---------------------------------------------------------------------- */
unsigned long long next_random() { /* splitmix64 */
    unsigned long long z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
void new_phase_order() {
    if (g_order != 2) return;
    for (int i = 0; i < g_threads; ++i) g_perm[i] = i;
    for (int i = g_threads - 1; i > 0; --i) {
        int j = (int)(next_random() % (unsigned long long)(i + 1));
        int t = g_perm[i]; g_perm[i] = g_perm[j]; g_perm[j] = t;
    }
}
inline int thread_at(int k) { return g_order == 0 ? k : g_order == 1 ? g_threads - 1 - k : g_perm[k]; }

/* ---- warps ---------------------------------------------------------------------------- */
/* Resolves every warp primitive whose participating lanes have all arrived. Returns the number
 * of threads made runnable, or -1 after recording divergence or deadlock. */
int resolve_warps() {
    int released = 0;
    for (int base = 0; base < g_threads; base += 32) {
        const int lanes = g_threads - base < 32 ? g_threads - base : 32;
        const unsigned int existing = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1u;
        for (int lane = 0; lane < lanes; ++lane) {
            Fiber* f = &g_fibers[base + lane];
            if (f->state != AT_WARP) continue;
            const unsigned int mask = f->mask & existing;
            unsigned int arrived = 0;
            for (int j = 0; j < lanes; ++j) {
                if (!(mask >> j & 1u)) continue;
                Fiber* g = &g_fibers[base + j];
                if (g->state == AT_BARRIER) {
                    record(ERR_DEADLOCK, base + lane,
                           "deadlock: waits at %s() at %s:%d for lane %d, thread (%u, %u, %u), "
                           "which waits at %s() at %s:%d",
                           describe_op(f->state, f->op), f->file, f->line, j, g_thread_index[base + j].x,
                           g_thread_index[base + j].y, g_thread_index[base + j].z, describe_op(g->state, g->op),
                           g->file, g->line);
                    return -1;
                }
                if (g->state != AT_WARP) continue; /* exited lanes do not take part */
                if (g->op != f->op || g->mask != f->mask) {
                    record(ERR_WARP, base + lane,
                           "warp divergence: waits at %s(mask 0x%08x) at %s:%d while lane %d, thread (%u, %u, %u), "
                           "waits at %s(mask 0x%08x) at %s:%d",
                           describe_op(f->state, f->op), f->mask, f->file, f->line, j, g_thread_index[base + j].x,
                           g_thread_index[base + j].y, g_thread_index[base + j].z, describe_op(g->state, g->op),
                           g->mask, g->file, g->line);
                    return -1;
                }
                arrived |= 1u << j;
            }
            /* Every named, existing, non-exited lane has arrived: exchange. */
            unsigned int votes = 0;
            for (int j = 0; j < lanes; ++j)
                if ((arrived >> j & 1u) && g_fibers[base + j].value) votes |= 1u << j;
            for (int j = 0; j < lanes; ++j) {
                if (!(arrived >> j & 1u)) continue;
                Fiber* g = &g_fibers[base + j];
                const int width = g->width, segment = j & ~(width - 1);
                int source = j;
                switch (g->op) {
                case CUDASIM_SHFL: source = segment + (g->arg & (width - 1)); break;
                case CUDASIM_SHFL_UP: source = j - segment >= g->arg ? j - g->arg : j; break;
                case CUDASIM_SHFL_DOWN: source = j - segment + g->arg < width ? j + g->arg : j; break;
                case CUDASIM_SHFL_XOR: source = (j ^ g->arg) <= (segment | (width - 1)) ? j ^ g->arg : j; break;
                default: break;
                }
                if (g->op == CUDASIM_BALLOT) g->result = votes;
                else if (g->op == CUDASIM_ANY) g->result = votes != 0;
                else if (g->op == CUDASIM_ALL) g->result = votes == arrived;
                else if (source >= 0 && source < 32 && (arrived >> source & 1u))
                    g->result = g_fibers[base + source].value;
                else /* the source lane does not take part: undefined on the GPU, poison (NaN / -1) here */
                    g->result = g->size >= 8 ? ~0ull : (1ull << (8 * g->size)) - 1;
                g->state = RUNNABLE;
                --g_at_warp;
                ++released;
            }
        }
    }
    return released;
}

/* ---- one block ------------------------------------------------------------------------ */
int run_block() {
    for (int i = 0; i < g_threads; ++i) prepare(&g_fibers[i]);
    g_done = g_at_barrier = g_at_warp = 0;
    new_phase_order();
    for (;;) {
        for (int k = 0; k < g_threads; ++k) {
            const int i = thread_at(k);
            Fiber* f = &g_fibers[i];
            if (f->state != RUNNABLE) continue;
            g_current = f;
            cudasim_bi.thread_idx = g_thread_index[i];
            resume(f);
            if (g_err->code) return g_err->code;
        }
        g_current = nullptr;
        if (g_at_warp) {
            if (resolve_warps() < 0) return g_err->code;
            continue;
        }
        if (g_done == g_threads) return 0;
        /* Everyone left waits at a block barrier: it must be one call site and nobody may have exited. */
        int first = -1, exited = -1, count = 0;
        for (int i = 0; i < g_threads; ++i) {
            Fiber* f = &g_fibers[i];
            if (f->state == DONE) { if (exited < 0) exited = i; continue; }
            if (first < 0) first = i;
            Fiber* w = &g_fibers[first];
            if (!same_site(f, w)) {
                record(ERR_DIVERGENCE, first,
                       "barrier divergence: waits at %s() at %s:%d while thread (%u, %u, %u) waits at %s() at %s:%d",
                       describe_op(w->state, w->op), w->file, w->line, g_thread_index[i].x, g_thread_index[i].y,
                       g_thread_index[i].z, describe_op(f->state, f->op), f->file, f->line);
                return g_err->code;
            }
            count += f->value != 0;
        }
        if (exited >= 0) {
            Fiber* w = &g_fibers[first];
            record(ERR_DIVERGENCE, first,
                   "barrier divergence: waits at %s() at %s:%d but thread (%u, %u, %u) has returned "
                   "(%d of %d threads wait there, %d have returned)",
                   describe_op(w->state, w->op), w->file, w->line, g_thread_index[exited].x, g_thread_index[exited].y,
                   g_thread_index[exited].z, g_at_barrier, g_threads, g_done);
            return g_err->code;
        }
        const int op = g_fibers[first].op;
        const unsigned long long result =
            op == 1 ? (unsigned long long)count : op == 2 ? count == g_threads : count > 0;
        for (int i = 0; i < g_threads; ++i) {
            g_fibers[i].state = RUNNABLE;
            g_fibers[i].result = result;
        }
        g_at_barrier = 0;
        new_phase_order();
    }
}

/* ---- fiber stack overflow --------------------------------------------------------------- */
#if !CUDASIM_ASAN
sigjmp_buf g_overflow_jump;
struct sigaction g_previous_segv;
volatile sig_atomic_t g_in_launch;
const char* volatile g_fault_address;

void on_segv(int, siginfo_t* info, void*) {
    Fiber* f = g_current;
    const char* address = (const char*)info->si_addr;
    if (g_in_launch && f) {
        /* A fault while a kernel thread runs: a guard page hit is a stack overflow, anything else an
         * illegal address (the GPU's cudaErrorIllegalAddress). Either way the launch is abandoned.
         * SA_NODEFER leaves SIGSEGV unblocked here, so the jump needs no signal mask restore. */
        g_fault_address = address;
        siglongjmp(g_overflow_jump, address >= f->stack - g_page && address < f->stack ? ERR_STACK : ERR_ADDRESS);
    }
    /* Not a kernel thread: give the fault back to whoever handled it before. */
    sigaction(SIGSEGV, &g_previous_segv, nullptr);
}

/* Installs on_segv for the launch, on an alternate stack (a fiber that overflowed has none left).
 * The previous handler comes back when the launch ends, so handlers of several modules never chain. */
void arm_segv_handler() {
    /* Checked at every launch: whoever installed the current alternate stack may remove it. */
    static thread_local char* alternate;
    stack_t current;
    if (sigaltstack(nullptr, &current) == 0 && (current.ss_flags & SS_DISABLE)) {
        const size_t size = SIGSTKSZ > 65536 ? SIGSTKSZ : 65536;
        if (!alternate) alternate = (char*)malloc(size); /* kept for the life of the OS thread */
        stack_t mine = {};
        mine.ss_sp = alternate;
        mine.ss_size = size;
        if (alternate) sigaltstack(&mine, nullptr);
    }
    struct sigaction action = {};
    action.sa_sigaction = on_segv;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, &g_previous_segv);
}
#endif

/* Fills [p, p + n) with 0xFF without ASan checks (the section holds ASan redzones). */
__attribute__((no_sanitize_address)) void poison(char* p, size_t n) {
#if CUDASIM_ASAN
    for (volatile char* q = p; q < p + n; ++q) *q = (char)0xFF;
#else
    memset(p, 0xFF, n);
#endif
}

}  // namespace

/* ---- entry points called from kernels ------------------------------------------------------ */
extern "C" void cudasim_syncthreads(const char* file, int line) { cudasim_syncthreads_op(0, 0, file, line); }

extern "C" int cudasim_syncthreads_op(int op, int predicate, const char* file, int line) {
    Fiber* f = g_current;
    f->state = AT_BARRIER;
    f->op = op;
    f->file = file;
    f->line = line;
    f->value = predicate != 0;
    ++g_at_barrier;
    yield_to_scheduler(f, false);
    return (int)f->result;
}

extern "C" unsigned long long cudasim_warp_op(int kind, unsigned int mask, unsigned long long value, int arg,
                                              int width, int size, const char* file, int line) {
    Fiber* f = g_current;
    const int thread = index_of(f), lane = thread & 31;
    if (!(mask >> lane & 1u)) {
        record(ERR_WARP, thread, "%s(mask 0x%08x) at %s:%d: the mask must include the calling lane %d",
               describe_op(AT_WARP, kind), mask, file, line, lane);
        abandon(f);
    }
    if (width < 1 || width > 32 || (width & (width - 1))) {
        record(ERR_WARP, thread, "%s() at %s:%d: width %d is not a power of 2 in 1..32", describe_op(AT_WARP, kind),
               file, line, width);
        abandon(f);
    }
    f->state = AT_WARP;
    f->op = kind;
    f->mask = mask;
    f->value = value;
    f->arg = arg;
    f->width = width;
    f->size = size;
    f->file = file;
    f->line = line;
    ++g_at_warp;
    yield_to_scheduler(f, false);
    return f->result;
}

extern "C" unsigned int cudasim_activemask(void) {
    const int base = index_of(g_current) & ~31;
    unsigned int mask = 0;
    for (int j = 0; j < 32 && base + j < g_threads; ++j)
        if (g_fibers[base + j].state != DONE) mask |= 1u << j;
    return mask;
}

extern "C" void cudasim_trap(const char* file, int line) {
    record(ERR_TRAP, index_of(g_current), "__trap() at %s:%d", file, line);
    abandon(g_current);
}

/* glibc's assert() calls this; the module's own definition (hidden) takes precedence over libc's. */
extern "C" void __assert_fail(const char* expression, const char* file, unsigned int line,
                              const char* function) noexcept {
    if (!g_current) {
        fprintf(stderr, "%s:%u: %s: Assertion `%s' failed.\n", file, line, function, expression);
        abort();
    }
    record(ERR_ASSERT, index_of(g_current), "device assertion `%s' failed at %s:%u in %s", expression, file, line,
           function);
    abandon(g_current);
}

/* ---- launch ------------------------------------------------------------------------------ */
CUDASIM_EXPORT int cudasim_kernel_count(void) { return cudasim_kernel_table_size; }
CUDASIM_EXPORT const char* cudasim_kernel_name(int k) { return cudasim_kernel_table[k].name; }
CUDASIM_EXPORT int cudasim_kernel_nparams(int k) { return cudasim_kernel_table[k].nparams; }
CUDASIM_EXPORT const int* cudasim_kernel_params(int k) { return cudasim_kernel_table[k].params; }
CUDASIM_EXPORT int cudasim_max_dynamic_shared(void) { return CUDASIM_MAX_DYNAMIC_SHARED; }
CUDASIM_EXPORT int cudasim_uses_ucontext(void) { return CUDASIM_USE_UCONTEXT; }

/* Bytes of a parameter of type code `code` (cudasim::type_code): a pointer's, or its base type's. */
static size_t param_bytes(int code) {
    if (code & 0x100) return sizeof(void*);
    switch (code & 0xFF) {
    case 1: case 2: case 3: return 1;
    case 4: case 5: return 2;
    case 6: case 7: case 10: return 4;
    default: return 8;
    }
}

/* Runs kernel k over the grid. args: one 8-byte slot per parameter. order: 0 forward, 1 reverse,
 * 2 random (seeded). Returns 0, or an error code with *err filled in. */
CUDASIM_EXPORT int cudasim_launch(int k, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                                  unsigned int by, unsigned int bz, unsigned long long shared_bytes,
                                  const unsigned char* args, int order, unsigned long long seed, cudasim_error* err) {
    static cudasim_kernel_entry unknown = {"?", nullptr, nullptr, 0};
    err->code = ERR_NONE;
    err->message[0] = 0;
    g_err = err;
    g_kernel = k >= 0 && k < cudasim_kernel_table_size ? &cudasim_kernel_table[k] : &unknown;
    const unsigned long long threads = (unsigned long long)bx * by * bz;
    if (g_kernel == &unknown || threads == 0 || threads > CUDASIM_MAX_THREADS || !gx || !gy || !gz ||
        shared_bytes > CUDASIM_MAX_DYNAMIC_SHARED) {
        g_threads = 1;
        record(ERR_CONFIG, 0, "invalid launch: kernel index %d, grid (%u, %u, %u), block (%u, %u, %u), %llu bytes of "
               "dynamic shared memory", k, gx, gy, gz, bx, by, bz, shared_bytes);
        return err->code;
    }
    g_threads = (int)threads;
    if (!ensure_fibers(g_threads)) {
        record(ERR_MEMORY, 0, "cannot allocate %d fiber stacks", g_threads);
        return err->code;
    }
    for (int i = 0; i < g_threads; ++i)
        g_thread_index[i] = uint3{i % bx, (i / bx) % by, i / (bx * by)};
    g_args = args;
    g_order = order;
    g_rng = seed;
    cudasim_bi.block_dim = dim3(bx, by, bz);
    cudasim_bi.grid_dim = dim3(gx, gy, gz);
#if CUDASIM_ASAN
    ASAN_UNPOISON_MEMORY_REGION(cudasim_dynamic_shared, shared_bytes);
    ASAN_POISON_MEMORY_REGION(cudasim_dynamic_shared + shared_bytes, CUDASIM_MAX_DYNAMIC_SHARED - shared_bytes);
#else
    arm_segv_handler();
    if (int fault = sigsetjmp(g_overflow_jump, 0)) {
        g_in_launch = 0;
        sigaction(SIGSEGV, &g_previous_segv, nullptr);
        g_stacks_dirty = true;
        if (fault == ERR_STACK)
            record(ERR_STACK, index_of(g_current), "fiber stack overflow: the thread used more than its %d KiB stack "
                   "(large local arrays?)", CUDASIM_STACK_SIZE / 1024);
        else
            record(ERR_ADDRESS, index_of(g_current), "illegal memory access at address %p (segmentation fault)",
                   (const void*)g_fault_address);
        g_current = nullptr;
        return err->code;
    }
    g_in_launch = 1;
#endif
    char* shared_start = __start_cudasim_shared;
    const size_t shared_size = shared_start ? (size_t)(__stop_cudasim_shared - shared_start) : 0;
#if CUDASIM_ASAN
    const size_t dynamic_poison = shared_bytes;
#else
    /* A little past the end too, so that slightly out-of-range reads also see NaN. */
    const size_t dynamic_poison =
        shared_bytes + 256 < CUDASIM_MAX_DYNAMIC_SHARED ? shared_bytes + 256 : CUDASIM_MAX_DYNAMIC_SHARED;
#endif
    int code = 0;
    for (unsigned int z = 0; z < gz && !code; ++z)
        for (unsigned int y = 0; y < gy && !code; ++y)
            for (unsigned int x = 0; x < gx && !code; ++x) {
                cudasim_bi.block_idx = uint3{x, y, z};
                if (shared_size) poison(shared_start, shared_size);
                if (dynamic_poison) poison(cudasim_dynamic_shared, dynamic_poison);
                code = run_block();
                if (code) break;
            }
    g_current = nullptr;
#if !CUDASIM_ASAN
    g_in_launch = 0;
    sigaction(SIGSEGV, &g_previous_segv, nullptr);
#endif
    return code;
}

/* cudasim_launch with the arguments as cuLaunchKernel takes them: params[i] points to parameter i's
 * value, whose type's bytes (param_bytes) are read, as the driver reads them. */
CUDASIM_EXPORT int cudasim_launch_params(int k, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                                         unsigned int by, unsigned int bz, unsigned long long shared_bytes,
                                         void* const* params, int order, unsigned long long seed, cudasim_error* err) {
    const bool known = k >= 0 && k < cudasim_kernel_table_size;
    const int count = known ? cudasim_kernel_table[k].nparams : 0;
    unsigned char* slots = (unsigned char*)calloc(count > 0 ? count : 1, 8);
    if (!slots) {
        err->code = ERR_MEMORY;
        snprintf(err->message, sizeof err->message, "cannot allocate the argument slots of a launch");
        return err->code;
    }
    for (int i = 0; i < count; ++i) memcpy(slots + 8 * i, params[i], param_bytes(cudasim_kernel_table[k].params[i]));
    const int code = cudasim_launch(k, gx, gy, gz, bx, by, bz, shared_bytes, slots, order, seed, err);
    free(slots);
    return code;
}
