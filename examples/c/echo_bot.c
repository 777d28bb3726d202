/* echo_bot.c: a BotCall bot in C over the C ABI (botcall.h): it answers
 * every verified call and sends back what it hears, as Opus packets or, with
 * --pcm RATE, as PCM16 at RATE Hz.
 *
 * Build (from the repository root, after `cargo build -p botcall-ffi`):
 *   gcc -Wall -Wextra -O2 -Ibotcall-ffi/include examples/c/echo_bot.c \
 *       -Ltarget/debug -lbotcall -Wl,-rpath,$PWD/target/debug -o echo_bot
 * Run:
 *   ./echo_bot --daemon http://127.0.0.1:8080 --key bot.jwk --id echo-bot
 *
 * Options: --calls N (exit after N calls), --reject N (reject the first N
 * calls with reason "declined"), --pcm RATE.
 * It prints one line per event: `online <agent>`, `call <id> from <session>
 * hv=<method>`, `call <id> ended: <code> (<detail>) rx=<n> tx=<n>`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "botcall.h"

static void die(const char *what, BotcallStatus s) {
    char msg[512];
    botcall_last_error(msg, sizeof msg);
    fprintf(stderr, "echo_bot: %s: %s (%d): %s\n", what, botcall_status_name(s), s, msg);
    exit(1);
}

/* Echoes one answered call until it ends; returns frames received and sent. */
static void echo(BotcallCall *call, unsigned pcm_rate, long *rx, long *tx) {
    BotcallStatus s;
    if (pcm_rate) {
        int16_t pcm[960];
        if ((s = botcall_call_set_pcm_rate(call, pcm_rate)) != BOTCALL_OK) die("set_pcm_rate", s);
        for (;;) {
            size_t n = 0;
            s = botcall_call_recv_pcm(call, -1, NULL, pcm, sizeof pcm / sizeof pcm[0], &n);
            if (s != BOTCALL_OK) break;
            *rx += (long)n;
            s = botcall_call_send_pcm(call, pcm, n, -1, NULL);
            if (s != BOTCALL_OK) break;
            *tx += (long)n;
        }
        /* Counted in samples: report 20 ms frames. */
        *rx /= (long)(pcm_rate / 50);
        *tx /= (long)(pcm_rate / 50);
    } else {
        uint8_t pkt[1275];
        for (;;) {
            size_t len = 0;
            s = botcall_call_recv_opus(call, -1, NULL, pkt, sizeof pkt, &len);
            if (s != BOTCALL_OK) break;
            (*rx)++;
            s = botcall_call_send_opus(call, pkt, len, -1, NULL);
            if (s != BOTCALL_OK) break;
            (*tx)++;
        }
    }
    if (s != BOTCALL_ERR_ENDED) die("audio", s);
}

int main(int argc, char **argv) {
    const char *daemon = "http://127.0.0.1:8080", *key = NULL, *id = NULL;
    long calls = -1, reject = 0;
    unsigned pcm_rate = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--daemon")) daemon = argv[i + 1];
        else if (!strcmp(argv[i], "--key")) key = argv[i + 1];
        else if (!strcmp(argv[i], "--id")) id = argv[i + 1];
        else if (!strcmp(argv[i], "--calls")) calls = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--reject")) reject = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--pcm")) pcm_rate = (unsigned)atol(argv[i + 1]);
        else { fprintf(stderr, "echo_bot: unknown option %s\n", argv[i]); return 2; }
    }
    if (!key) { fprintf(stderr, "usage: echo_bot --key FILE [--daemon URL] [--id ID] [--calls N] [--reject N] [--pcm RATE]\n"); return 2; }
    if (botcall_version() >> 16 != BOTCALL_ABI_VERSION >> 16) {
        fprintf(stderr, "echo_bot: libbotcall ABI %#x, built for %#x\n", botcall_version(), BOTCALL_ABI_VERSION);
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    BotcallOptions opts;
    botcall_options_init(&opts);
    opts.name = "Echo (C)";
    opts.listed = 1;
    BotcallBot *bot = NULL;
    BotcallStatus s = botcall_bot_connect(daemon, key, NULL, 0, id, &opts, &bot);
    if (s != BOTCALL_OK) die("connect", s);
    char agent[BOTCALL_ID_CAP];
    if ((s = botcall_bot_agent_id(bot, agent, sizeof agent, NULL)) != BOTCALL_OK) die("agent_id", s);
    printf("online %s\n", agent);

    for (long n = 0; calls < 0 || n < calls; n++) {
        BotcallCall *call = NULL;
        if ((s = botcall_bot_next_call(bot, -1, NULL, &call)) != BOTCALL_OK) die("next_call", s);
        char cid[BOTCALL_ID_CAP];
        BotcallClaims who;
        if ((s = botcall_call_id(call, cid, sizeof cid, NULL)) != BOTCALL_OK) die("call_id", s);
        if ((s = botcall_call_claims(call, &who)) != BOTCALL_OK) die("claims", s);
        printf("call %s from %s hv=%s\n", cid, who.session, who.hv);
        long rx = 0, tx = 0;
        if (n < reject) {
            if ((s = botcall_call_reject(call, "declined")) != BOTCALL_OK) die("reject", s);
        } else if ((s = botcall_call_answer(call)) == BOTCALL_OK) {
            echo(call, pcm_rate, &rx, &tx);
        } else if (s != BOTCALL_ERR_ENDED) {
            die("answer", s);
        }
        char code[32], detail[80];
        if ((s = botcall_call_end_reason(call, code, sizeof code, detail, sizeof detail)) != BOTCALL_OK)
            die("end_reason", s);
        printf("call %s ended: %s (%s) rx=%ld tx=%ld\n", cid, code, detail, rx, tx);
        botcall_call_free(call);
    }
    botcall_bot_free(bot);
    printf("done\n");
    return 0;
}
