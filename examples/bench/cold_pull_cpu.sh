#!/usr/bin/env bash
# Cold pull CPU accounting (docs/benchmarks.md, session 10): distribution on
# 127.0.0.1:5100 as soute's upstream, soute on 127.0.0.1:5200, curl as the
# client; for each round a new blob of SIZE_MB is pushed to distribution, then
# pulled cold through soute and (another one) straight from distribution, with
# the wall time and each server's CPU ticks (1/100 s) for the pull.
# DROP_CACHES=1 (root) flushes and drops the page cache before each cold pull,
# so soute's writes reuse freed pages instead of growing the page cache.
# Needs docker-registry, curl, openssl; loopback only; both servers stopped at the end.
set -euo pipefail
BIN=${BIN:-target/release/soute}
SIZE_MB=${SIZE_MB:-1024}
ROUNDS=${ROUNDS:-3}
W=$(mktemp -d /tmp/soute-cold-pull.XXXXXX)
mkdir -p "$W/dist"
cat >"$W/dist.yml" <<EOC
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $W/dist}, delete: {enabled: true}}
http: {addr: 127.0.0.1:5100}
EOC
docker-registry serve "$W/dist.yml" >"$W/dist.log" 2>&1 &
DP=$!
"$BIN" serve --data "$W/soute" --listen 127.0.0.1:5200 --tls off --anonymous-pull --log-level warn >"$W/soute.log" 2>&1 &
SP=$!
trap 'kill $SP $DP 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT
for _ in $(seq 50); do [ -e "$W/soute/soute.db" ] && curl -sf http://127.0.0.1:5200/v2/ >/dev/null && break; sleep 0.1; done
"$BIN" upstream add dist http://127.0.0.1:5100 --data "$W/soute" >/dev/null
push() { # $1: a seed byte (hex digit); prints the blob's digest
    head -c $((SIZE_MB * 1024 * 1024)) /dev/zero |
        openssl enc -aes-128-ctr -K "000102030405060708090a0b0c0d0e0$1" -iv 0 -nosalt 2>/dev/null >"$W/blob"
    local d loc
    d=sha256:$(sha256sum "$W/blob" | cut -d' ' -f1)
    loc=$(curl -si -X POST http://127.0.0.1:5100/v2/r/blobs/uploads/ | grep -i '^location' | cut -d' ' -f2 | tr -d '\r')
    curl -sf -X PUT -H 'Content-Type: application/octet-stream' -T "$W/blob" "$loc&digest=$d" >/dev/null
    rm "$W/blob"
    echo "$d"
}
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
pull() { /usr/bin/time -f "%e" curl -sf -o /dev/null "$1" 2>&1; }
for i in $(seq "$ROUNDS"); do
    d=$(push "$(printf %x $((i % 8)))")
    if [ "${DROP_CACHES:-0}" = 1 ]; then sync; echo 3 >/proc/sys/vm/drop_caches; fi
    s0=$(cpu $SP); d0=$(cpu $DP)
    t=$(pull "http://127.0.0.1:5200/v2/dist/r/blobs/$d")
    echo "round $i cold through soute: ${t} s, soute $(($(cpu $SP) - s0)) ticks, distribution $(($(cpu $DP) - d0)) ticks"
    d2=$(push "$(printf %x $((i % 8 + 8)))")
    d0=$(cpu $DP)
    t=$(pull "http://127.0.0.1:5100/v2/r/blobs/$d2")
    echo "round $i direct from distribution: ${t} s, distribution $(($(cpu $DP) - d0)) ticks"
done
