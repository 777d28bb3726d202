#!/usr/bin/env bash
# benches/regprobe.sh BIN hs|es [CPUSET]: 4 s of wrk POST /register with fresh tokens (64 connections)
# against the daemon BIN pinned to CPUSET (default 0), wrk on CPU 1; prints each daemon thread's
# CPU µs and context switches per request (/proc/PID/task). Needs benches/run's botload and wrk.
set -euo pipefail
BIN=$1; ALG=$2; CPUS=${3:-0}
D=/tmp/rp; mkdir -p $D
BL=/tmp/botcall-peers/botload
[ -f $D/keys/keys.json ] || $BL setup -dir $D/keys >/dev/null
N=40000
find $D -name '*.tok' -mmin +5 -delete  # tokens expire
[ -f $D/$ALG.tok ] || $BL mint -dir $D/keys -alg $ALG -prefix $([ $ALG = es ] && echo bench-es-f- || echo bench-hsf-) -n $N -start 0 -out $D/$ALG.tok -ids 5000 >/dev/null
rm -rf $D/state; mkdir -p $D/state
PORT=18999
taskset -c $CPUS $BIN --listen 127.0.0.1:$PORT --stun-listen off --keys $D/keys/keys.json --state-dir $D/state \
  --rate-ip 0 --rate-agent 0 --verify-rate 0 --rate-calls-ip 0 --rate-calls-bot 0 --open-ids-per-hour 0 --max-connections-per-ip 1000000 --log-level warn ${EXTRA:-} >/dev/null 2>&1 &
PID=$!
sleep 0.5
snap() { for t in /proc/$PID/task/*; do echo "$(cat $t/comm) $(awk '{print $14, $15}' $t/stat) $(grep -E '^(voluntary|nonvoluntary)_ctxt' $t/status | awk '{print $2}' | tr '\n' ' ')"; done; }
A=$(snap)
OUT=$(TOKENS=$D/$ALG.tok taskset -c 1 wrk -t1 -c64 -d4s -s "$(dirname "$0")/wrk/botcall_register.lua" http://127.0.0.1:$PORT)
B=$(snap)
kill $PID; wait $PID 2>/dev/null || true
REQ=$(echo "$OUT" | grep -oE '^ +[0-9]+ requests' | awk '{print $1}')
echo "$OUT" | grep -E "requests in|Non-2xx" || true
paste <(echo "$A") <(echo "$B") | awk -v n=$REQ '{printf "%-14s user %.1f us/req sys %.1f us/req vcs %.2f/req nvcs %.2f/req\n",$1,($7-$2)*1e4/n,($8-$3)*1e4/n,($9-$4)/n,($10-$5)/n}'
