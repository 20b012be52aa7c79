#include "interrupt.h"
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

enum { SLOTS = 64, NAME = 4200 };
enum { FREE = 0, FILLING = 1, LIVE = 2 };

static volatile sig_atomic_t flag;
static _Atomic int state[SLOTS];
static char names[SLOTS][NAME];

const volatile sig_atomic_t *interrupt_flag(void) { return &flag; }

void interrupt_raise_for_test(int signo) { flag = signo; }

int interrupt_track(const char *tmp_path) {
    size_t n = strlen(tmp_path);
    if (n >= NAME) return -1;
    for (int i = 0; i < SLOTS; i++) {
        int expect = FREE;
        if (!atomic_compare_exchange_strong(&state[i], &expect, FILLING)) continue;
        memcpy(names[i], tmp_path, n + 1);
        atomic_store(&state[i], LIVE);
        return i;
    }
    return -1;
}

void interrupt_untrack(int slot) {
    if (slot >= 0 && slot < SLOTS) atomic_store(&state[slot], FREE);
}

void interrupt_remove_temps(void) {
    for (int i = 0; i < SLOTS; i++)
        if (atomic_load(&state[i]) == LIVE) unlink(names[i]);
}

static void say(const char *s) { ssize_t r = write(2, s, strlen(s)); (void)r; }

static void on_signal(int signo) {
    if (flag) {
        interrupt_remove_temps();
        say("\noodseg: interrupted again: stopped at once; temporary files removed, no partial output left\n");
        _exit(128 + signo);
    }
    flag = signo;
    say("\noodseg: interrupted: stopping after the current image and saving what is done "
        "(run again with --resume to continue; interrupt again to stop at once)\n");
}

void interrupt_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}
