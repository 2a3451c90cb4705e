#!/usr/bin/env bash
# real_clients.sh - end-to-end round trips of REAL registry clients (docker via dockerd,
# podman, skopeo, containerd ctr, oras-py, docker SDK for Python) against soute served
# over TLS with its own CA and basic auth (users made with `soute user add`), offline;
# and the pull-through cache with a docker-registry upstream on loopback, including the
# daemons' mirror set-ups (dockerd registry-mirrors, containerd hosts.toml, podman
# registries.conf).
# Adapted from shared/lab/real-clients.sh (which targets Debian's docker-registry).
#
#   SOUTE_BIN=target/release/soute bash tests/e2e/real_clients.sh
#   REGISTRY_IMPL=distribution bash tests/e2e/real_clients.sh   # same scenario against
#       Debian's docker-registry (openssl CA + htpasswd); the steps where soute is meant
#       to differ (/ca.crt, docker search, `soute user ...`) then expect distribution's answer.
#
# env: SOUTE_BIN (soute mode), PORT (default: first free port in 5150..5199),
#      WORK (default /tmp/soute-e2e, must be under /tmp), SKIP_PY=1 (no pip),
#      STEP_TIMEOUT (seconds per step, default 300),
#      SOUTE_AUTH=auto|basic|token (default auto, soute's default): `--auth token` makes
#      every client go through soute's Docker token service (/v2/token) instead of Basic
#      auth; `auto` does so while an anonymous rule exists; `basic` never (then docker
#      cannot pull without credentials: "no basic auth credentials").
#      SOUTE_SERVE_EXTRA="--blob-store s3 --s3-endpoint ..." (soute mode): more `serve`
#      flags, e.g. blobs on an S3 store (credentials in AWS_* of the environment); with
#      --blob-store s3, a last step checks the data folder's blobs/ stayed empty.
# Needs root and the Debian packages that .ci/run installs; it installs nothing itself.
#
# Why [::1] and the name registry.test -> ::1 in /etc/hosts: dockerd ALWAYS treats
# 127.0.0.0/8 as an insecure registry (skips TLS verification). ::1 is not in that list,
# so docker really verifies soute's certificate against /etc/docker/certs.d/<host:port>/.
#
# Everything changed outside $WORK is reverted by the EXIT trap: the /etc/hosts line
# (same inode), the certs.d entries, and runtime leftovers that did not exist before
# (/etc/docker/key.json, /run/docker, /run/containerd, /var/lib/containers, ...).
# Every process started is stopped by PID. Runs of this script (and the skopeo test in
# tests/clients.rs) are serialized machine-wide by flock on /tmp/soute-e2e.lock.
# Output: PASS/FAIL/SKIP per step, then `N passed, N failed`; exit 0 iff no FAIL.
set -u -o pipefail

REGISTRY_IMPL=${REGISTRY_IMPL:-soute}
SOUTE_AUTH=${SOUTE_AUTH:-auto}
REG_HOST=registry.test
W=${WORK:-/tmp/soute-e2e}
RUSER=testuser
RPASS=testpass
SKIP_PY=${SKIP_PY:-0}
STEP_TIMEOUT=${STEP_TIMEOUT:-300}
HOSTS_MARK="# soute-e2e"
LOCK_FILE=/tmp/soute-e2e.lock

T_START=$(date +%s.%N)
PASS=0; FAIL=0; SKIP=0; N=0
PIDS_TO_KILL=()

die() { echo "real_clients.sh: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "must run as root"
case "$W" in /tmp/?*) ;; *) die "WORK must be under /tmp" ;; esac
case "$REGISTRY_IMPL" in
    soute)
        [ -n "${SOUTE_BIN:-}" ] || die "SOUTE_BIN is not set (path of the soute binary)"
        [ -x "$SOUTE_BIN" ] || die "SOUTE_BIN=$SOUTE_BIN is not executable"
        SOUTE_BIN=$(realpath "$SOUTE_BIN") ;;
    distribution) ;;
    *) die "REGISTRY_IMPL must be soute or distribution" ;;
esac
SOUTE=0; [ "$REGISTRY_IMPL" = soute ] && SOUTE=1
case "$SOUTE_AUTH" in
    auto | basic) ;;
    token) [ "$SOUTE" = 1 ] || die "SOUTE_AUTH=token is a soute mode (distribution has no token service here)" ;;
    *) die "SOUTE_AUTH must be auto, basic or token" ;;
esac
# what clients print for wrong credentials: the 401 of /v2/ (basic) or of /v2/token (token)
# oras-py pushes with its basic backend in both modes (soute takes Basic credentials on
# every endpoint in token mode too): its token backend (0.2.43) keeps the token of the
# first challenge (pull) and refreshes it only on a 403, while soute, like distribution,
# answers 401 insufficient_scope for push. ORAS_BACKEND (pulls, anonymous) is its token
# backend in token mode.
AUTH_FLAGS=(--auth "$SOUTE_AUTH")
if [ "$SOUTE_AUTH" = token ]; then
    WRONG_RE='unauthorized'; ORAS_BACKEND=token
elif [ "$SOUTE_AUTH" = auto ]; then
    # Basic challenges until the anonymous rule exists, Bearer ones while it does
    # (ORAS_BACKEND follows: set to token at the grant, back to basic at the revoke)
    WRONG_RE='401 Unauthorized|unauthorized'; ORAS_BACKEND=basic
else
    WRONG_RE='401 Unauthorized'; ORAS_BACKEND=basic
fi

# one run at a time on this machine (/etc/hosts, certs.d and dockerd are global state)
exec 9>"$LOCK_FILE"
flock -w 900 9 || die "another run holds $LOCK_FILE for more than 15 minutes"

port_free() { [ -z "$(ss -Hltn "sport = :$1")" ]; }
if [ -z "${PORT:-}" ]; then
    for p in $(seq 5150 5199); do port_free "$p" && { PORT=$p; break; }; done
    [ -n "${PORT:-}" ] || die "no free port in 5150..5199"
fi
REG="$REG_HOST:$PORT"

# a stale dockerd bind mount from a killed run would make rm -rf fail
grep -o " ${W}[/ ][^ ]*" /proc/mounts 2>/dev/null | sort -r | while read -r m; do umount -l "$m"; done
rm -rf "$W"; mkdir -p "$W/logs" "$W/certs"

# ---------------------------------------------------------------- helpers
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1fs", b-a}'; }
section() { printf '\n=== %s\n' "$*"; }
_log() { printf '%s/logs/%02d-%s.log' "$W" "$N" "$(echo "$1" | tr -c 'A-Za-z0-9_.-' '_' | cut -c1-60)"; }

# bounded SECONDS 'shell command': runs it in its own process group; on time-out the
# whole group gets SIGTERM, then SIGKILL 5 s later; status 124 then.
bounded() {
    local secs=$1 cmd=$2 pid w rc
    set -m
    (eval "$cmd") </dev/null 9>&- &
    pid=$!
    (sleep "$secs"; kill -TERM -- "-$pid"; sleep 5; kill -KILL -- "-$pid") >/dev/null 2>&1 &
    w=$!
    set +m
    wait "$pid"; rc=$?
    if ! kill -0 "$w" 2>/dev/null; then rc=124; echo "TIMED OUT after ${secs}s"; fi
    kill -- "-$w" 2>/dev/null; wait "$w" 2>/dev/null
    return "$rc"
}
# step NAME 'shell command'          -> PASS if the command exits 0
step() {
    local name=$1 cmd=$2 log t0; N=$((N + 1)); log=$(_log "$name"); t0=$(now)
    if bounded "$STEP_TIMEOUT" "$cmd" >"$log" 2>&1; then
        PASS=$((PASS + 1)); printf 'PASS  %-62s %6s\n' "$name" "$(elapsed "$t0")"; return 0
    fi
    FAIL=$((FAIL + 1)); printf 'FAIL  %-62s %6s  (log: %s)\n' "$name" "$(elapsed "$t0")" "$log"
    tail -n 8 "$log" | sed 's/^/        | /'; return 1
}
# xfail NAME REGEX 'shell command'   -> PASS if the command FAILS and its output matches REGEX
xfail() {
    local name=$1 re=$2 cmd=$3 log t0 line; N=$((N + 1)); log=$(_log "$name"); t0=$(now)
    if bounded "$STEP_TIMEOUT" "$cmd" >"$log" 2>&1; then
        FAIL=$((FAIL + 1)); printf 'FAIL  %-62s %6s  (expected an error, got success)\n' "$name" "$(elapsed "$t0")"
        tail -n 4 "$log" | sed 's/^/        | /'; return 1
    fi
    if line=$(grep -Eim1 -- "$re" "$log"); then
        PASS=$((PASS + 1)); printf 'PASS  %-62s %6s\n' "$name (expected error)" "$(elapsed "$t0")"
        printf '        > %s\n' "$(echo "$line" | cut -c1-200)"; return 0
    fi
    FAIL=$((FAIL + 1)); printf 'FAIL  %-62s %6s  (error did not match /%s/)\n' "$name" "$(elapsed "$t0")" "$re"
    tail -n 6 "$log" | sed 's/^/        | /'; return 1
}
# differ NAME DIST_REGEX 'shell command': a step where soute is meant to differ from
# distribution: a normal step with soute, an expected error matching DIST_REGEX otherwise
differ() {
    if [ "$SOUTE" = 1 ]; then step "$1" "$3"; else xfail "$1 [distribution differs]" "$2" "$3"; fi
}
# has ARGS...: grep that reads all its input (a `grep -q` that quits early would
# SIGPIPE the writer, and pipefail would turn the match into a failure)
has() { grep "$@" >/dev/null; }
# alive PID: running and not a zombie
alive() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) && [ -n "$s" ] && [ "${s#Z}" = "$s" ]; }
skip() { SKIP=$((SKIP + 1)); printf 'SKIP  %-62s  (%s)\n' "$1" "$2"; }
wait_for() { # wait_for SECONDS 'condition'
    local i; for ((i = 0; i < $1 * 10; i++)); do (eval "$2") >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1
}
soute() { "$SOUTE_BIN" "$@"; }

# ---------------------------------------------------------------- cleanup (EXIT trap)
LEFTOVER_CANDIDATES=(/etc/docker/key.json /etc/docker/certs.d /etc/containers/certs.d
    /etc/containers/networks /etc/cni/net.d/cni.lock /run/containers /run/crun /run/runc
    /run/docker /run/containerd /run/libpod /var/lib/containers /var/lib/docker
    /var/lib/containerd "$HOME/.docker" /run/netns)
PREEXISTING=" "
for p in "${LEFTOVER_CANDIDATES[@]}"; do [ -e "$p" ] && PREEXISTING+="$p "; done

stop_pid() { # stop_pid PID [seconds]: SIGTERM, bounded wait, then SIGKILL
    local pid=$1 t=${2:-10} i
    alive "$pid" || return 0
    kill "$pid" 2>/dev/null
    for ((i = 0; i < t * 10; i++)); do alive "$pid" || return 0; sleep 0.1; done
    echo "pid $pid did not stop within ${t}s: SIGKILL"
    kill -9 "$pid" 2>/dev/null; sleep 0.2
}
cleanup() {
    local p
    # A child forked by this shell (a step, a watchdog) still has these traps until
    # bash resets them; a signal in that window must not run the cleanup there
    # (seen: a watchdog killed right after its fork stopped soute and emptied /etc/hosts).
    [ "$BASHPID" = "$$" ] || exit 1
    trap - EXIT INT TERM
    section "cleanup"
    # dockerd first (it stops its own containerd); then the rest, all by PID
    if [ -n "${DOCKERD_PID:-}" ]; then
        stop_pid "$DOCKERD_PID" 20
        [ -f "$W/docker-exec/containerd/containerd.pid" ] &&
            stop_pid "$(cat "$W/docker-exec/containerd/containerd.pid")" 10
    fi
    for p in "${PIDS_TO_KILL[@]}"; do stop_pid "$p" 10; done
    # unmount anything left under $W (dockerd bind-mounts its data-root)
    grep -o " ${W}[/ ][^ ]*" /proc/mounts 2>/dev/null | sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
    # /etc/hosts: drop only our marked line, keep the inode (no sed -i rename)
    if grep -q -- "$HOSTS_MARK\$" /etc/hosts; then
        grep -v -- "$HOSTS_MARK\$" /etc/hosts >"$W/hosts.new" && cat "$W/hosts.new" >/etc/hosts
    fi
    rm -rf "/etc/docker/certs.d/$REG" "/etc/containers/certs.d/$REG"
    for p in "${LEFTOVER_CANDIDATES[@]}"; do
        case "$PREEXISTING" in *" $p "*) continue ;; esac
        [ "$p" = /run/netns ] && continue
        [ -e "$p" ] && rm -rf "$p"
    done
    case "$PREEXISTING" in *" /run/netns "*) ;; *)
        mountpoint -q /run/netns 2>/dev/null && umount /run/netns
        [ -d /run/netns ] && rmdir /run/netns 2>/dev/null ;; esac
    local still
    # shellcheck disable=SC2009 # ps + grep -F: the work dir is a literal, not a pattern
    still=$(ps -eo pid=,args= | grep -F -- "$W/" | grep -v grep || true)
    [ -n "$still" ] && { echo "WARNING: processes still referencing $W:"; echo "$still"; }
    echo "processes stopped, /etc/hosts + certs.d entries removed, work dir kept: $W"
    echo "total $(elapsed "$T_START")"
    printf '\n%d passed, %d failed, %d skipped\n' "$PASS" "$FAIL" "$SKIP"
    [ "$FAIL" -eq 0 ] && [ "$PASS" -gt 0 ] && exit 0
    exit 1
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- 0. tools
section "tools (installed by .ci/run; this script installs nothing)"
# docker-registry: the registry under test in distribution mode, the cache's upstream in soute mode
TOOLS=(dockerd docker ctr podman skopeo umoci busybox jq openssl curl ss flock docker-registry /usr/bin/python3)
[ "$SOUTE" = 1 ] || TOOLS+=(htpasswd)
MISSING=()
for t in "${TOOLS[@]}"; do command -v "$t" >/dev/null 2>&1 || MISSING+=("$t"); done
if [ ${#MISSING[@]} -gt 0 ]; then
    FAIL=$((FAIL + 1)); echo "FAIL  missing tools: ${MISSING[*]} (bash .ci/run installs them)"; exit 1
fi
echo "        registry: $REGISTRY_IMPL${SOUTE_BIN:+ ($SOUTE_BIN)} on [::1]:$PORT as $REG; work dir $W"
echo "        docker CLI $(docker --version 2>/dev/null | cut -d, -f1 | awk '{print $3}'), dockerd $(dockerd --version | awk '{print $3}' | tr -d ,)," \
    "skopeo $(skopeo --version | awk '{print $3}'), podman $(podman --version | awk '{print $3}'), ctr $(ctr --version | awk '{print $3}')"

# ---------------------------------------------------------------- 1. registry
section "registry ($REGISTRY_IMPL) on [::1]:$PORT, TLS, as $REG"
add_hosts() {
    getent ahosts "$REG_HOST" | has . && ! grep -q -- "$HOSTS_MARK\$" /etc/hosts && {
        echo "$REG_HOST already resolves (someone else's /etc/hosts entry?) - refusing"; return 1; }
    grep -q -- "$HOSTS_MARK\$" /etc/hosts || echo "::1 $REG_HOST $HOSTS_MARK" >>/etc/hosts
    getent ahosts "$REG_HOST" | has '^::1 '
}
step "/etc/hosts: ::1 $REG_HOST" add_hosts || exit 1

start_soute() {
    port_free "$PORT" || { echo "port $PORT busy"; return 1; }
    "$SOUTE_BIN" serve --data "$W/soute-data" --listen "[::1]:$PORT" --hostname "$REG_HOST" \
        ${AUTH_FLAGS[@]+"${AUTH_FLAGS[@]}"} ${SOUTE_SERVE_EXTRA:-} >"$W/soute.log" 2>&1 9>&- &
    local pid=$!
    echo "$pid" >"$W/registry.pid"
    wait_for 30 "grep -q '^soute listening on ' $W/soute.log || ! alive $pid"
    cat "$W/soute.log"
    alive "$pid" || { echo "soute exited"; return 1; }
    grep -qx "soute listening on https://\[::1\]:$PORT" "$W/soute.log"
}
make_pki_and_htpasswd() { # distribution mode only: what soute does by itself
    mkdir -p "$W/pki" "$W/auth" "$W/registry-data"
    cd "$W/pki" || return 1
    openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=soute-e2e test CA" \
        -keyout ca.key -out ca.crt -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" &&
        openssl req -newkey rsa:2048 -nodes -subj "/CN=$REG_HOST" -keyout server.key -out server.csr &&
        printf 'subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1,IP:::1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' "$REG_HOST" >ext.cnf &&
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 7 -extfile ext.cnf -out server.crt &&
        htpasswd -Bbn "$RUSER" "$RPASS" >"$W/auth/htpasswd"
}
start_distribution() {
    port_free "$PORT" || { echo "port $PORT busy"; return 1; }
    make_pki_and_htpasswd || return 1
    cat >"$W/registry.yml" <<EOF
version: 0.1
log: {level: info, accesslog: {disabled: false}}
storage: {filesystem: {rootdirectory: $W/registry-data}, delete: {enabled: true}}
http:
  addr: "[::1]:$PORT"
  secret: soute-e2e-secret
  tls: {certificate: $W/pki/server.crt, key: $W/pki/server.key}
auth: {htpasswd: {realm: basic-realm, path: $W/auth/htpasswd}}
EOF
    docker-registry serve "$W/registry.yml" >"$W/registry.log" 2>&1 9>&- &
    echo $! >"$W/registry.pid"
    wait_for 30 "curl -s -o /dev/null --cacert $W/pki/ca.crt https://$REG/v2/"
}
if [ "$SOUTE" = 1 ]; then
    step "soute serve --data DIR --listen [::1]:$PORT --hostname $REG_HOST --auth $SOUTE_AUTH (tls auto)" start_soute
else
    step "docker-registry serve (openssl CA, htpasswd with $RUSER)" start_distribution
fi
# (steps run in subshells, so daemons' PIDs come back through pid files)
[ -f "$W/registry.pid" ] && REGISTRY_PID=$(cat "$W/registry.pid") && PIDS_TO_KILL+=("$REGISTRY_PID")
if [ -z "${REGISTRY_PID:-}" ] || ! alive "$REGISTRY_PID"; then echo "registry is not running"; exit 1; fi

CA="$W/certs/ca.crt"
xfail "curl https://$REG/v2/ without the CA" 'certificate|SSL' "curl -sS -o /dev/null https://$REG/v2/"
if [ "$SOUTE" = 1 ]; then
    step "curl --insecure https://$REG/ca.crt (no auth)" \
        "curl -sS -f --insecure -o $CA https://$REG/ca.crt && openssl x509 -in $CA -noout -subject"
    step "downloaded CA == soute-data/tls/ca.crt" "cmp $CA $W/soute-data/tls/ca.crt"
    step "CA is a CA (basicConstraints CA:TRUE)" \
        "openssl x509 -in $CA -noout -text | grep -A1 'Basic Constraints' | has 'CA:TRUE'"
    step "server cert verifies with the CA, SAN has $REG_HOST" \
        "openssl s_client -connect [::1]:$PORT -servername $REG_HOST -CAfile $CA -verify_return_error </dev/null 2>/dev/null | openssl x509 -noout -ext subjectAltName | tee /dev/stderr | has 'DNS:$REG_HOST'"
    step "no users yet: curl --cacert /v2/ -> 200" \
        "test \"\$(curl -sS -o /dev/null -w '%{http_code}' --cacert $CA https://$REG/v2/)\" = 200"
else
    cp "$W/pki/ca.crt" "$CA"
    xfail "curl https://$REG/ca.crt [distribution differs]" '404' \
        "curl -sS -f --cacert $CA -o /dev/null https://$REG/ca.crt"
fi

# ---------------------------------------------------------------- 2. offline test images
section "build test images offline (busybox-static + umoci; OCI layout $W/oci)"
build_images() {
    set -e
    mkdir -p "$W/rootfs/bin"; cd "$W"
    cp "$(command -v busybox)" rootfs/bin/busybox
    for a in sh cat echo ls; do ln -sf busybox "rootfs/bin/$a"; done
    echo "hello from layer 2" >"$W/hello.txt"
    umoci init --layout "$W/oci"
    umoci new --image "$W/oci:multi"
    umoci insert --image "$W/oci:multi" "$W/rootfs/bin" /bin         # layer 1: busybox
    umoci insert --image "$W/oci:multi" "$W/hello.txt" /hello.txt     # layer 2: one file
    umoci config --image "$W/oci:multi" --os linux --architecture amd64 \
        --config.cmd /bin/cat --config.cmd /hello.txt
    # fake arm64 variant (same layers, config says arm64) + hand-written OCI index
    umoci config --image "$W/oci:multi" --architecture arm64 --tag multi-arm64
    desc() {
        local d f; d=$(jq -r --arg t "$1" '.manifests[]|select(.annotations["org.opencontainers.image.ref.name"]==$t)|.digest' oci/index.json)
        f=oci/blobs/sha256/${d#sha256:}
        jq -n --arg d "$d" --argjson s "$(stat -c %s "$f")" --arg a "$2" \
            '{mediaType:"application/vnd.oci.image.manifest.v1+json",digest:$d,size:$s,platform:{architecture:$a,os:"linux"}}'
    }
    jq -n --argjson a "$(desc multi amd64)" --argjson b "$(desc multi-arm64 arm64)" \
        '{schemaVersion:2,mediaType:"application/vnd.oci.image.index.v1+json",manifests:[$a,$b]}' >"$W/index.json"
    local idx; idx=$(sha256sum "$W/index.json" | cut -d' ' -f1)
    cp "$W/index.json" "oci/blobs/sha256/$idx"
    jq --arg d "sha256:$idx" --argjson s "$(stat -c %s "$W/index.json")" \
        '.manifests += [{mediaType:"application/vnd.oci.image.index.v1+json",digest:$d,size:$s,annotations:{"org.opencontainers.image.ref.name":"multiarch"}}]' \
        oci/index.json >oci/index.json.new && mv oci/index.json.new oci/index.json
    umoci ls --layout "$W/oci"
    skopeo copy -q "oci:$W/oci:multi" "docker-archive:$W/multi.tar:lab/multi:1"   # for `docker load`
    tar -C "$W/rootfs" -cf "$W/rootfs.tar" .                                        # for `docker import`
}
step "umoci: 2-layer image, arm64 variant, OCI index; docker-archive + rootfs tar" build_images
step "umoci stat shows 2 layers" "umoci stat --image $W/oci:multi | grep -c 'umoci insert' | has -x 2"
oci_config_digest() { # config digest of tag $1 in the OCI layout
    local m; m=$(jq -r --arg t "$1" '.manifests[]|select(.annotations["org.opencontainers.image.ref.name"]==$t)|.digest' "$W/oci/index.json")
    jq -r .config.digest "$W/oci/blobs/sha256/${m#sha256:}"
}

# podman/skopeo environment: vfs storage and auth file under $W, nothing in /etc or ~
mkdir -p "$W/containers/tmp" "$W/containers/networks"
cat >"$W/containers/storage.conf" <<EOF
[storage]
driver = "vfs"
runroot = "$W/containers/run"
graphroot = "$W/containers/storage"
EOF
cat >"$W/containers/containers.conf" <<EOF
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$W/containers/events.log"
tmp_dir = "$W/containers/tmp"
[network]
network_config_dir = "$W/containers/networks"
EOF
export CONTAINERS_STORAGE_CONF="$W/containers/storage.conf" CONTAINERS_CONF="$W/containers/containers.conf" \
    REGISTRY_AUTH_FILE="$W/containers/auth.json" TMPDIR="$W/containers/tmp"

# ---------------------------------------------------------------- 3. docker
section "docker (dockerd $(dockerd --version | awk '{print $3}' | tr -d ,), own containerd, vfs, no iptables/bridge)"
export DOCKER_HOST="unix://$W/docker.sock" DOCKER_CONFIG="$W/docker-config"
mkdir -p "$DOCKER_CONFIG"
start_dockerd() {
    # its own daemon.json (never /etc/docker's): the cache section sets registry-mirrors
    printf '{}\n' >"$W/daemon.json"
    dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs \
        --config-file "$W/daemon.json" \
        --data-root "$W/docker" --exec-root "$W/docker-exec" --pidfile "$W/dockerd.pid" \
        -H "unix://$W/docker.sock" >"$W/dockerd.log" 2>&1 9>&- &
    echo $! >"$W/dockerd.bgpid"
    wait_for 60 "docker version --format '{{.Server.Version}}'"
}
DOCKER_OK=0
if step "start dockerd (data-root/exec-root under $W)" start_dockerd; then DOCKER_OK=1; fi
[ -f "$W/dockerd.bgpid" ] && DOCKERD_PID=$(cat "$W/dockerd.bgpid")

if [ $DOCKER_OK = 1 ]; then
    xfail "docker login BEFORE the CA is trusted" 'x509: certificate signed by unknown authority' \
        "echo $RPASS | docker login -u $RUSER --password-stdin $REG"
fi
trust_ca() {
    # /etc/docker/certs.d is read by dockerd AND by containers/image (podman, skopeo)
    mkdir -p "/etc/docker/certs.d/$REG" "/etc/containers/certs.d/$REG"
    cp "$CA" "/etc/docker/certs.d/$REG/ca.crt"
    cp "$CA" "/etc/containers/certs.d/$REG/ca.crt"
}
step "trust CA: /etc/docker/certs.d/$REG/ca.crt (+ /etc/containers/certs.d)" trust_ca

section "users"
if [ "$SOUTE" = 1 ]; then
    step "soute user add $RUSER (password on stdin), server running" \
        "printf '%s\n' '$RPASS' | soute user add $RUSER --data $W/soute-data"
    step "soute user list shows $RUSER" "soute user list --data $W/soute-data | tee /dev/stderr | has -w $RUSER"
else
    skip "soute user add $RUSER" "distribution: htpasswd file made at start"
fi
# expect_status CODE [curl args]: GET /v2/ answers CODE, within 5 s (user changes
# apply to the running server, maybe not in the same millisecond)
expect_status() {
    local code=$1 got i; shift
    for ((i = 0; i < 50; i++)); do
        got=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$CA" "$@" "https://$REG/v2/")
        [ "$got" = "$code" ] && return 0
        sleep 0.1
    done
    echo "GET /v2/ $*: HTTP $got, expected $code"; return 1
}
if [ "$SOUTE_AUTH" = token ]; then
    step "now /v2/ without credentials -> 401 + WWW-Authenticate: Bearer realm=https://$REG/v2/token (no restart)" \
        "expect_status 401 && curl -sS -i --cacert $CA https://$REG/v2/ | tee /dev/stderr | has -iE '^www-authenticate: Bearer realm=\"https://$REG/v2/token\",service=\"soute\"'"
    step "curl /v2/token -u $RUSER (scope lab/multi:pull,push) -> a token; Bearer /v2/ -> 200" \
        "t=\$(curl -sS -f --cacert $CA -u $RUSER:$RPASS 'https://$REG/v2/token?service=soute&scope=repository:lab/multi:pull,push' | tee /dev/stderr | jq -er .token) && test \"\$(curl -sS -o /dev/null -w '%{http_code}' --cacert $CA -H \"Authorization: Bearer \$t\" https://$REG/v2/)\" = 200"
    step "curl /v2/token -u $RUSER:wrong -> 401" \
        "test \"\$(curl -sS -o /dev/null -w '%{http_code}' --cacert $CA -u $RUSER:wrong 'https://$REG/v2/token?service=soute&scope=repository:lab/multi:pull')\" = 401"
else
    step "now /v2/ without credentials -> 401 + WWW-Authenticate: Basic (no restart)" \
        "expect_status 401 && curl -sS -i --cacert $CA https://$REG/v2/ | tee /dev/stderr | has -iE '^www-authenticate: Basic realm=\"$([ $SOUTE = 1 ] && echo soute || echo basic-realm)\"'"
fi
step "curl -u $RUSER /v2/ -> 200" "expect_status 200 -u $RUSER:$RPASS"
step "curl -u $RUSER:wrong /v2/ -> 401" "expect_status 401 -u $RUSER:wrong"

section "docker round trip"
if [ $DOCKER_OK = 1 ]; then
    step "docker load -i multi.tar (2 layers)" "docker load -i $W/multi.tar"
    step "docker import rootfs.tar (1 layer)" "docker import -c 'CMD [\"/bin/sh\"]' $W/rootfs.tar lab/imported:1"
    xfail "docker login wrong password" "$WRONG_RE" \
        "echo wrong | docker login -u $RUSER --password-stdin $REG"
    step "docker login $REG" "echo $RPASS | docker login -u $RUSER --password-stdin $REG | grep 'Login Succeeded'"
    step "docker tag" "docker tag lab/multi:1 $REG/lab/multi:1 && docker tag lab/imported:1 $REG/lab/imported:1"
    step "docker push $REG/lab/multi:1" "docker push $REG/lab/multi:1"
    step "docker push $REG/lab/imported:1" "docker push $REG/lab/imported:1"
    step "docker image rm (all local copies)" \
        "docker image rm $REG/lab/multi:1 lab/multi:1 $REG/lab/imported:1 lab/imported:1 && ! docker image inspect $REG/lab/multi:1"
    step "docker pull $REG/lab/multi:1" "docker pull $REG/lab/multi:1"
    step "pulled image id == config digest of the OCI original" \
        "test \"\$(docker image inspect -f '{{.Id}}' $REG/lab/multi:1)\" = \"\$(oci_config_digest multi)\""
    step "docker run --network none (layers intact)" \
        "docker run --rm --network none $REG/lab/multi:1 | has -x 'hello from layer 2'"
    step "docker pull $REG/lab/imported:1" "docker pull $REG/lab/imported:1"
    step "skopeo copy --all oci index -> $REG/lab/multiarch:1" \
        "skopeo copy --all --dest-creds $RUSER:$RPASS oci:$W/oci:multiarch docker://$REG/lab/multiarch:1"
    step "docker pull multi-arch index -> amd64" \
        "docker pull $REG/lab/multiarch:1 && test \"\$(docker image inspect -f '{{.Architecture}}' $REG/lab/multiarch:1)\" = amd64"
    step "docker pull --platform linux/arm64 -> arm64" \
        "docker pull --platform linux/arm64 $REG/lab/multiarch:1 && test \"\$(docker image inspect -f '{{.Architecture}}' $REG/lab/multiarch:1)\" = arm64"
    step "docker push same image to lab/multi2: cross-repo mount" \
        "docker tag $REG/lab/multi:1 $REG/lab/multi2:1 && docker push $REG/lab/multi2:1 | tee /dev/stderr | has 'Mounted from lab/multi'"
    differ "docker search $REG/multi shows lab/multi" 'Unexpected status code 404' \
        "docker search $REG/multi | tee /dev/stderr | has '^lab/multi '"
    differ "docker search --limit 1 --format {{.Name}}" 'Unexpected status code 404' \
        "test \"\$(docker search --limit 1 --format '{{.Name}}' $REG/imported | tee /dev/stderr)\" = lab/imported"
    step "docker logout $REG" "docker logout $REG && ! grep -q '\"$REG\"' $DOCKER_CONFIG/config.json"
    docker image rm "$REG/lab/multi:1" >/dev/null 2>&1
    xfail "docker pull after logout" 'no basic auth credentials|unauthorized' "docker pull $REG/lab/multi:1"
else
    skip "docker round trip" "dockerd did not start (see $W/dockerd.log)"
fi

# ---------------------------------------------------------------- 4. podman
section "podman $(podman --version | awk '{print $3}') (vfs storage under $W)"
step "podman info (graphDriverName vfs)" "podman info --format '{{.Store.GraphDriverName}}' | has -x vfs"
xfail "podman login wrong password" 'invalid username/password|unauthorized' \
    "podman login -u $RUSER -p wrong $REG"
step "podman login $REG" "echo $RPASS | podman login -u $RUSER --password-stdin $REG"
step "podman pull $REG/lab/multi:1 (pushed by docker)" "podman pull $REG/lab/multi:1"
step "podman import rootfs.tar" "podman import -c 'CMD [\"/bin/sh\"]' $W/rootfs.tar localhost/lab/pimport:1"
step "podman tag + push $REG/lab/podman:1" "podman tag $REG/lab/multi:1 $REG/lab/podman:1 && podman push $REG/lab/podman:1"
step "podman push $REG/lab/pimport:1" "podman push localhost/lab/pimport:1 docker://$REG/lab/pimport:1"
step "podman rmi" "podman rmi $REG/lab/podman:1 $REG/lab/multi:1 localhost/lab/pimport:1 && ! podman image exists $REG/lab/podman:1"
step "podman pull $REG/lab/podman:1" "podman pull $REG/lab/podman:1 && podman image exists $REG/lab/podman:1"
if true; then
    # podman 4.3 falls back from /v1/search to /v2/_catalog, in token mode with a token it
    # asks for no scope at all: lists show what its credentials may pull
    step "podman search $REG/lab" "podman search $REG/lab | tee /dev/stderr | has '$REG/lab/podman'"
fi
step "podman search --list-tags $REG/lab/podman" "podman search --list-tags $REG/lab/podman | has '$REG/lab/podman *1'"
step "podman manifest create/add (oci: amd64 + arm64)" \
    "podman manifest create lab-list && podman manifest add lab-list oci:$W/oci:multi && podman manifest add lab-list oci:$W/oci:multi-arm64"
step "podman manifest push --all $REG/lab/podman-list:1" \
    "podman manifest push --all lab-list docker://$REG/lab/podman-list:1 && podman manifest rm lab-list"
step "podman logout $REG" "podman logout $REG"
xfail "podman pull after logout" 'unauthorized|authentication required' "podman pull $REG/lab/podman-list:1"

# ---------------------------------------------------------------- 5. skopeo
section "skopeo $(skopeo --version | awk '{print $3}')"
mv "/etc/docker/certs.d/$REG" "$W/certs.d.tmp" && mv "/etc/containers/certs.d/$REG" "$W/certs.d.tmp2"
xfail "skopeo inspect with no CA trusted" 'x509|certificate' "skopeo inspect --creds $RUSER:$RPASS docker://$REG/lab/podman:1"
step "skopeo inspect --cert-dir (no system trust)" \
    "mkdir -p $W/certdir && cp $CA $W/certdir/ && skopeo inspect --cert-dir $W/certdir --creds $RUSER:$RPASS docker://$REG/lab/podman:1 >/dev/null"
mv "$W/certs.d.tmp" "/etc/docker/certs.d/$REG" && mv "$W/certs.d.tmp2" "/etc/containers/certs.d/$REG"
xfail "skopeo login wrong password" 'invalid username/password|unauthorized' "skopeo login -u $RUSER -p wrong $REG"
step "skopeo login $REG" "skopeo login -u $RUSER -p $RPASS $REG"
step "skopeo copy oci:multi -> docker://$REG/lab/skopeo:1" "skopeo copy oci:$W/oci:multi docker://$REG/lab/skopeo:1"
step "skopeo inspect (2 layers, amd64)" \
    "skopeo inspect docker://$REG/lab/skopeo:1 | tee /dev/stderr | jq -e '(.Layers|length)==2 and .Architecture==\"amd64\"'"
step "skopeo inspect --raw (OCI manifest, same bytes)" \
    "skopeo inspect --raw docker://$REG/lab/skopeo:1 >$W/skopeo-raw.json && jq -e '.config.mediaType==\"application/vnd.oci.image.config.v1+json\"' $W/skopeo-raw.json && cmp $W/skopeo-raw.json $W/oci/blobs/sha256/\$(sha256sum $W/skopeo-raw.json | cut -d' ' -f1)"
step "skopeo copy --all oci index -> $REG/lab/skopeo-multi:1" "skopeo copy --all oci:$W/oci:multiarch docker://$REG/lab/skopeo-multi:1"
step "skopeo inspect --raw: index with amd64+arm64" \
    "skopeo inspect --raw docker://$REG/lab/skopeo-multi:1 | jq -e '[.manifests[].platform.architecture]==[\"amd64\",\"arm64\"]'"
step "skopeo inspect --override-arch arm64" "skopeo inspect --override-arch arm64 docker://$REG/lab/skopeo-multi:1 | jq -e '.Architecture==\"arm64\"'"
step "skopeo copy docker:// -> docker:// (same registry)" "skopeo copy docker://$REG/lab/skopeo:1 docker://$REG/lab/copied:1"
step "skopeo list-tags $REG/lab/copied" "skopeo list-tags docker://$REG/lab/copied | jq -e '.Tags==[\"1\"]'"
step "skopeo delete $REG/lab/copied:1" "skopeo delete docker://$REG/lab/copied:1"
xfail "skopeo inspect deleted manifest" 'manifest unknown' "skopeo inspect docker://$REG/lab/copied:1"
step "skopeo list-tags after delete (empty)" "skopeo list-tags docker://$REG/lab/copied | jq -e '(.Tags|length)==0'"
step "skopeo copy docker:// -> dir: (pull to disk)" "skopeo copy docker://$REG/lab/imported:1 dir:$W/pulled-dir && ls $W/pulled-dir/manifest.json"
step "skopeo logout $REG" "skopeo logout $REG"

# ---------------------------------------------------------------- 6. cross-client + ctr
section "cross-client checks + containerd ctr (dockerd's containerd socket)"
if [ $DOCKER_OK = 1 ]; then
    echo "$RPASS" | docker login -u "$RUSER" --password-stdin "$REG" >/dev/null 2>&1
    step "docker pull --platform linux/arm64 podman-list:1 (pushed by podman)" \
        "docker pull --platform linux/arm64 $REG/lab/podman-list:1 && test \"\$(docker image inspect -f '{{.Architecture}}' $REG/lab/podman-list:1)\" = arm64"
    step "docker pull image pushed by podman" "docker pull $REG/lab/podman:1"
    CTR="ctr --address $W/docker-exec/containerd/containerd.sock --namespace soute-e2e"
    mkdir -p "$W/ctr-hosts/$REG"; cp "$CA" "$W/ctr-hosts/$REG/ca.crt"
    printf 'server = "https://%s"\n[host."https://%s"]\n  capabilities = ["pull", "resolve", "push"]\n  ca = "%s"\n' \
        "$REG" "$REG" "$W/ctr-hosts/$REG/ca.crt" >"$W/ctr-hosts/$REG/hosts.toml"
    xfail "ctr pull with no CA" 'x509|certificate' "$CTR images pull --user $RUSER:$RPASS $REG/lab/multi:1"
    step "ctr pull --tlscacert --user (docker-pushed image)" "$CTR images pull --tlscacert $CA --user $RUSER:$RPASS $REG/lab/multi:1"
    step "ctr pull --hosts-dir --all-platforms (index)" "$CTR images pull --hosts-dir $W/ctr-hosts --all-platforms --user $RUSER:$RPASS $REG/lab/multiarch:1"
    step "ctr tag + push $REG/lab/ctr:1" "$CTR images tag $REG/lab/multi:1 $REG/lab/ctr:1 && $CTR images push --hosts-dir $W/ctr-hosts --user $RUSER:$RPASS $REG/lab/ctr:1"
    xfail "ctr pull wrong password" "$WRONG_RE" "$CTR images pull --hosts-dir $W/ctr-hosts --user $RUSER:wrong $REG/lab/podman:1"
    $CTR images rm "$REG/lab/multi:1" "$REG/lab/multiarch:1" "$REG/lab/ctr:1" >/dev/null 2>&1
    docker logout "$REG" >/dev/null 2>&1
else
    skip "docker/ctr cross-client checks" "dockerd not running"
fi

# ---------------------------------------------------------------- 7. Python clients (PyPI)
section "Python clients: oras (oras-py) + docker SDK, in a venv"
if [ "$SKIP_PY" = 1 ]; then
    skip "python clients" "SKIP_PY=1"
elif step "python3 -m venv + pip install oras==0.2.43 docker==7.2.0 (PyPI)" \
    "/usr/bin/python3 -m venv $W/venv && PIP_CACHE_DIR=$W/pip-cache $W/venv/bin/pip install -q --disable-pip-version-check oras==0.2.43 docker==7.2.0 && $W/venv/bin/pip list 2>/dev/null | grep -Ei '^(oras|docker) '"; then
    cat >"$W/oras_test.py" <<EOF
import os, tempfile, oras.client
host = "$REG"
c = oras.client.OrasClient(hostname=host, auth_backend="basic", tls_verify="$CA")
# NB: without a reachable docker daemon, oras-py's login() only writes config_path (no request)
c.login(username="$RUSER", password="$RPASS", hostname=host, config_path="$W/oras-auth.json")
os.chdir("$W")
open("artifact.txt", "w").write("hello artifact\n")
r = c.push(target=f"{host}/lab/artifact:v1", files=["artifact.txt"])
assert r.status_code == 201, r.status_code
assert c.get_tags(f"{host}/lab/artifact") == ["v1"]
out = tempfile.mkdtemp(dir="$W")
files = c.pull(target=f"{host}/lab/artifact:v1", outdir=out)
assert open(files[0]).read() == "hello artifact\n"
m = c.get_manifest(f"{host}/lab/artifact:v1")
print("manifest:", m["mediaType"], "config:", m["config"]["mediaType"], "layer:", m["layers"][0]["mediaType"])
assert c.delete_tag(f"{host}/lab/artifact", "v1")
print("oras push/pull/tags/delete OK")
EOF
    step "oras-py push/pull/tags/delete artifact" \
        "env -u DOCKER_HOST REQUESTS_CA_BUNDLE=$CA $W/venv/bin/python $W/oras_test.py"
    if [ $DOCKER_OK = 1 ]; then
        cat >"$W/dockersdk_test.py" <<EOF
import docker
host = "$REG"
c = docker.DockerClient(base_url="unix://$W/docker.sock")
try:
    c.login(username="$RUSER", password="wrong", registry=host, reauth=True); raise SystemExit("wrong pw accepted")
except docker.errors.APIError as e:
    print("wrong password rejected:", e.explanation)
print(c.login(username="$RUSER", password="$RPASS", registry=host, reauth=True))
c.images.get("$REG/lab/imported:1").tag(f"{host}/lab/sdk", "1")
errs = [l for l in c.api.push(f"{host}/lab/sdk", tag="1", stream=True, decode=True) if "error" in l]
assert not errs, errs
c.images.remove(f"{host}/lab/sdk:1")
img = c.images.pull(f"{host}/lab/sdk", tag="1")
print("pulled", img.id, img.tags)
EOF
        step "docker SDK (docker-py) login/push/pull" "$W/venv/bin/python $W/dockersdk_test.py"
    else
        skip "docker SDK" "dockerd not running"
    fi
else
    skip "oras-py / docker SDK" "pip install failed (offline?)"
fi

# ---------------------------------------------------------------- 8. access rules
# Users with rules, a scoped token and anonymous pulls, as a user would type them:
#   alice: pull,push on alice/**, pull on public/**;  bob: pull on public/**;
#   seeder (admin) pushes public/x and private/x;  token alice-ci: --user alice
#   --scope 'alice/**:pull,push';  then the rule anonymous public/** pull.
# A known caller refused gets 403 DENIED (clients print "denied", or "403 (Forbidden)" for a
# HEAD, which has no body to quote; ctr always "403 Forbidden");
# an anonymous one 401 (clients print "unauthorized" / "authentication required").
# Order: the signed-in checks (A) run before the anonymous rule exists, the anonymous
# pulls (B) after; (C) signs in again with the anonymous rule in place. soute always
# challenges an anonymous GET /v2/ (docker, podman and skopeo send credentials only
# after that 401); with `--auth basic` the challenge stays Basic, so docker cannot pull
# anonymously ("no basic auth credentials"), while `auto` switches to Bearer tokens once
# the anonymous rule exists and every client pulls anonymously.
section "access rules: users alice and bob, a token for alice, anonymous public/** (auth $SOUTE_AUTH)"
DENIED_RE='denied|403 Forbidden|403 \(Forbidden\)'
ANON_RE='unauthorized|authentication required|no basic auth credentials|401'
access_setup() {
    set -e
    printf '%s\n' seedpass | soute user add seeder --admin --data "$W/soute-data"
    printf '%s\n' alicepass | soute user add alice --data "$W/soute-data"
    printf '%s\n' bobpass | soute user add bob --data "$W/soute-data"
    soute access grant alice 'alice/**' pull,push --data "$W/soute-data"
    soute access grant alice 'public/**' pull --data "$W/soute-data"
    soute access grant bob 'public/**' pull --data "$W/soute-data"
    soute token create alice-ci --user alice --scope 'alice/**:pull,push' --data "$W/soute-data" >"$W/alice.token"
    grep -Eqx 'soute_[0-9a-f]{64}' "$W/alice.token"
    soute user list --data "$W/soute-data"
}
access_seed() {
    set -e
    skopeo copy -q --dest-creds seeder:seedpass "oci:$W/oci:multi" "docker://$REG/public/x:1"
    skopeo copy -q --dest-creds seeder:seedpass "oci:$W/oci:multi" "docker://$REG/private/x:1"
}
# docker_signed_in TAG: alice (password, then token) and bob push and pull
docker_signed_in() {
    local t=$1 ref
    docker logout "$REG" >/dev/null 2>&1
    docker load -q -i "$W/multi.tar" >/dev/null
    for ref in "alice/x:$t" "alice/x:$t-token" "private/x:$t" "public/x:$t"; do docker tag lab/multi:1 "$REG/$ref"; done
    xfail "docker login as alice, wrong password [$t]" "$WRONG_RE" "echo wrong | docker login -u alice --password-stdin $REG"
    step "docker login as alice (password) [$t]" "echo alicepass | docker login -u alice --password-stdin $REG | has 'Login Succeeded'"
    step "docker push alice/x:$t as alice: allowed" "docker push $REG/alice/x:$t"
    xfail "docker push private/x:$t as alice: denied" "$DENIED_RE" "docker push $REG/private/x:$t"
    step "docker login as alice with her token [$t]" "docker login -u alice --password-stdin $REG <$W/alice.token | has 'Login Succeeded'"
    step "docker push alice/x:$t-token with the token: allowed" "docker push $REG/alice/x:$t-token"
    xfail "docker push private/x:$t with alice's token: denied" "$DENIED_RE" "docker push $REG/private/x:$t"
    step "docker login as bob [$t]" "echo bobpass | docker login -u bob --password-stdin $REG | has 'Login Succeeded'"
    xfail "docker push public/x:$t as bob (pull only): denied" "$DENIED_RE" "docker push $REG/public/x:$t"
    docker image rm "$REG/public/x:1" "$REG/private/x:1" >/dev/null 2>&1
    step "docker pull public/x:1 as bob [$t]" "docker pull $REG/public/x:1"
    xfail "docker pull private/x:1 as bob: denied [$t]" "$DENIED_RE" "docker pull $REG/private/x:1"
    docker logout "$REG" >/dev/null 2>&1
}
podman_signed_in() {
    local t=$1
    podman logout "$REG" >/dev/null 2>&1
    step "podman: local image for the access checks [$t]" \
        "podman import -q $W/rootfs.tar $REG/alice/p:$t >/dev/null && podman tag $REG/alice/p:$t $REG/private/p:$t $REG/alice/p:$t-token $REG/public/p:$t"
    xfail "podman login as alice, wrong password [$t]" 'invalid username/password|unauthorized' "podman login -u alice -p wrong $REG"
    step "podman login as alice [$t]" "echo alicepass | podman login -u alice --password-stdin $REG"
    step "podman push alice/p:$t as alice: allowed" "podman push $REG/alice/p:$t"
    xfail "podman push private/p:$t as alice: denied" "$DENIED_RE" "podman push $REG/private/p:$t"
    step "podman login as alice with her token [$t]" "podman login -u alice --password-stdin $REG <$W/alice.token"
    step "podman push alice/p:$t-token with the token: allowed" "podman push $REG/alice/p:$t-token"
    xfail "podman push private/p:$t with alice's token: denied" "$DENIED_RE" "podman push $REG/private/p:$t"
    step "podman login as bob [$t]" "echo bobpass | podman login -u bob --password-stdin $REG"
    xfail "podman push public/p:$t as bob: denied" "$DENIED_RE" "podman push $REG/public/p:$t"
    podman logout "$REG" >/dev/null 2>&1
}
skopeo_signed_in() {
    local t=$1
    step "skopeo copy -> alice/s:$t --dest-creds alice: allowed" \
        "skopeo copy -q --dest-creds alice:alicepass oci:$W/oci:multi docker://$REG/alice/s:$t"
    xfail "skopeo copy -> private/s:$t as alice: denied" "$DENIED_RE" \
        "skopeo copy -q --dest-creds alice:alicepass oci:$W/oci:multi docker://$REG/private/s:$t"
    step "skopeo copy -> alice/s:$t-token with the token: allowed" \
        "skopeo copy -q --dest-creds alice:\$(cat $W/alice.token) oci:$W/oci:multi docker://$REG/alice/s:$t-token"
    xfail "skopeo copy -> private/s:$t with the token: denied" "$DENIED_RE" \
        "skopeo copy -q --dest-creds alice:\$(cat $W/alice.token) oci:$W/oci:multi docker://$REG/private/s:$t"
    xfail "skopeo copy -> public/s:$t as bob: denied" "$DENIED_RE" \
        "skopeo copy -q --dest-creds bob:bobpass oci:$W/oci:multi docker://$REG/public/s:$t"
    step "skopeo inspect public/x:1 --creds bob [$t]" \
        "skopeo inspect --creds bob:bobpass docker://$REG/public/x:1 | jq -e '.Architecture==\"amd64\"'"
    xfail "skopeo inspect private/x:1 --creds bob: denied [$t]" "$DENIED_RE" \
        "skopeo inspect --creds bob:bobpass docker://$REG/private/x:1"
}
ctr_signed_in() {
    local t=$1
    step "ctr pull public/x:1 --user bob [$t]" "$CTR images pull --hosts-dir $W/ctr-hosts --user bob:bobpass $REG/public/x:1"
    xfail "ctr pull private/x:1 --user bob: denied [$t]" "$DENIED_RE" \
        "$CTR images pull --hosts-dir $W/ctr-hosts --user bob:bobpass $REG/private/x:1"
    step "ctr tag public/x:1 -> alice/c:$t, alice/c:$t-token, private/c:$t" \
        "for r in alice/c:$t alice/c:$t-token private/c:$t; do $CTR images tag --force $REG/public/x:1 $REG/\$r || exit 1; done"
    step "ctr push alice/c:$t --user alice: allowed" "$CTR images push --hosts-dir $W/ctr-hosts --user alice:alicepass $REG/alice/c:$t"
    xfail "ctr push private/c:$t --user alice: denied" "$DENIED_RE" \
        "$CTR images push --hosts-dir $W/ctr-hosts --user alice:alicepass $REG/private/c:$t"
    step "ctr push alice/c:$t-token with the token: allowed" \
        "$CTR images push --hosts-dir $W/ctr-hosts --user alice:\$(cat $W/alice.token) $REG/alice/c:$t-token"
    xfail "ctr push private/c:$t with the token: denied" "$DENIED_RE" \
        "$CTR images push --hosts-dir $W/ctr-hosts --user alice:\$(cat $W/alice.token) $REG/private/c:$t"
    $CTR images rm "$REG/public/x:1" "$REG/alice/c:$t" "$REG/alice/c:$t-token" "$REG/private/c:$t" >/dev/null 2>&1
}
write_oras_access() {
    cat >"$W/oras_access.py" <<PYEOF
# oras-py: python oras_access.py signed-in TAG | anonymous
import os, sys, oras.client
host, backend = "$REG", os.environ.get("ORAS_BACKEND", "$ORAS_BACKEND")
def client(user=None, password=None, backend=backend):
    c = oras.client.OrasClient(hostname=host, auth_backend=backend, tls_verify="$CA")
    if user:
        c.login(username=user, password=password, hostname=host, config_path="$W/oras-access-auth.json")
    return c
def refused(what, f, words):
    try:
        r = f()
    except Exception as e:
        text = "%s: %s" % (type(e).__name__, e)
    else:
        code = getattr(r, "status_code", None)
        if code is None or code < 400:
            sys.exit("%s: accepted (%r)" % (what, r))
        text = "status %s %s" % (code, getattr(r, "text", ""))
    print("%s refused: %s" % (what, text[:300]))
    assert any(w in text.lower() for w in words), (what, text)
os.chdir("$W")
open("access.txt", "w").write("alice's artifact\n")
if sys.argv[1] == "signed-in":
    t = sys.argv[2]
    alice = client("alice", "alicepass", "basic")
    r = alice.push(target=f"{host}/alice/art:{t}", files=["access.txt"])
    assert r.status_code == 201, r.status_code
    print("alice pushed alice/art:" + t)
    refused("alice push private/art", lambda: alice.push(target=f"{host}/private/art:{t}", files=["access.txt"]), ["denied", "403"])
    token = client("alice", open("$W/alice.token").read().strip(), "basic")
    r = token.push(target=f"{host}/alice/art:{t}-token", files=["access.txt"])
    assert r.status_code == 201, r.status_code
    print("alice's token pushed alice/art:%s-token" % t)
    refused("token push private/art", lambda: token.push(target=f"{host}/private/art:{t}", files=["access.txt"]), ["denied", "403"])
    out = client("alice", "alicepass").pull(target=f"{host}/alice/art:{t}", outdir="$W/oras-access-out")
    assert open(out[0]).read() == "alice's artifact\n"
    print("alice pulled alice/art:%s (%s backend)" % (t, backend))
else:
    anon = client()
    assert anon.get_tags(f"{host}/public/x") == ["1"], "anonymous tags of public/x"
    print("anonymous get_tags public/x: ['1']")
    m = anon.get_manifest(f"{host}/public/x:1")
    assert m["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json", m
    print("anonymous get_manifest public/x:1:", m["config"]["digest"])
    if backend == "token":
        refused("anonymous get_tags private/x", lambda: anon.get_tags(f"{host}/private/x"), ["unauthorized", "401"])
PYEOF
}
oras_py() { env -u DOCKER_HOST REQUESTS_CA_BUNDLE="$CA" ORAS_BACKEND="$ORAS_BACKEND" "$W/venv/bin/python" "$W/oras_access.py" "$@"; }
# signed_in TAG: every client signed in (A and C)
signed_in() {
    if [ $DOCKER_OK = 1 ]; then docker_signed_in "$1"; else skip "docker with access rules [$1]" "dockerd not running"; fi
    podman_signed_in "$1"
    skopeo_signed_in "$1"
    if [ $DOCKER_OK = 1 ]; then ctr_signed_in "$1"; else skip "ctr with access rules [$1]" "dockerd (and its containerd) not running"; fi
    if [ -x "$W/venv/bin/python" ]; then
        step "oras-py [$1]: alice and her token push alice/, not private/; pull ($ORAS_BACKEND auth)" "oras_py signed-in $1"
    else
        skip "oras-py with access rules [$1]" "no venv (see the Python section)"
    fi
}
if [ "$SOUTE" = 1 ]; then
    CTR="ctr --address $W/docker-exec/containerd/containerd.sock --namespace soute-e2e"
    write_oras_access
    step "users alice, bob, seeder (admin); rules; token alice-ci (alice/**:pull,push)" access_setup
    step "seeder (admin) pushes public/x:1 and private/x:1 (skopeo)" access_seed
    step "soute access check: alice private/x push -> deny" \
        "soute access check alice private/x push --data $W/soute-data | tee /dev/stderr | has -i '^deny'"
    step "catalog as alice lists public/x, not private/x" \
        "curl -sS --cacert $CA -u alice:alicepass https://$REG/v2/_catalog | tee /dev/stderr | jq -e '(.repositories | index(\"public/x\")) and (.repositories | index(\"private/x\") | not)'"

    section "access (A): signed in, no anonymous rule yet"
    signed_in a

    section "access (B): soute access grant anonymous 'public/**' pull; everyone logged out"
    [ "$SOUTE_AUTH" = auto ] && ORAS_BACKEND=token   # Bearer challenges from now on
    step "soute access grant anonymous 'public/**' pull (server running)" \
        "soute access grant anonymous 'public/**' pull --data $W/soute-data && soute access list --data $W/soute-data"
    if [ $DOCKER_OK = 1 ]; then
        docker logout "$REG" >/dev/null 2>&1
        docker image rm "$REG/public/x:1" "$REG/private/x:1" >/dev/null 2>&1
        if [ "$SOUTE_AUTH" = basic ]; then
            xfail "anonymous docker pull public/x:1 with --auth basic: docker needs credentials" \
                'no basic auth credentials' "docker pull $REG/public/x:1"
        else
            step "anonymous docker pull public/x:1" "docker pull $REG/public/x:1 && docker image inspect $REG/public/x:1 >/dev/null"
        fi
        xfail "anonymous docker pull private/x:1: refused" "$ANON_RE" "docker pull $REG/private/x:1"
        if [ "$SOUTE_AUTH" = basic ]; then
            skip "anonymous docker push public/x: refused" "--auth basic: docker could not pull public/x to push it back"
        else
            xfail "anonymous docker push public/x: refused" "$ANON_RE" \
                "docker tag $REG/public/x:1 $REG/public/x:anon && docker push $REG/public/x:anon"
        fi
    else
        skip "anonymous docker pulls" "dockerd not running"
    fi
    podman logout "$REG" >/dev/null 2>&1
    step "anonymous podman pull public/x:1" "podman pull -q $REG/public/x:1"
    xfail "anonymous podman pull private/x:1: refused" "$ANON_RE" "podman pull $REG/private/x:1"
    step "anonymous skopeo inspect public/x:1" "skopeo inspect --no-creds docker://$REG/public/x:1 | jq -e '.Architecture==\"amd64\"'"
    xfail "anonymous skopeo inspect private/x:1: refused" "$ANON_RE" "skopeo inspect --no-creds docker://$REG/private/x:1"
    if [ $DOCKER_OK = 1 ]; then
        step "anonymous ctr pull public/x:1" "$CTR images pull --hosts-dir $W/ctr-hosts $REG/public/x:1"
        xfail "anonymous ctr pull private/x:1: refused" "$ANON_RE" "$CTR images pull --hosts-dir $W/ctr-hosts $REG/private/x:1"
        $CTR images rm "$REG/public/x:1" >/dev/null 2>&1
    else
        skip "anonymous ctr pulls" "dockerd (and its containerd) not running"
    fi
    if [ -x "$W/venv/bin/python" ]; then
        # Basic mode: oras-py 0.2.43's BasicAuth without credentials raises AttributeError
        # on a 401 (no _basic_auth) and retries for ~130 s, so private/x is asked only
        # with its token backend
        step "anonymous oras-py: tags and manifest of public/x$([ "$ORAS_BACKEND" = token ] && echo ', not of private/x')" \
            "oras_py anonymous"
    else
        skip "anonymous oras-py" "no venv (see the Python section)"
    fi

    section "access (C): signed in again, with the anonymous rule in place"
    signed_in c
    # the next section checks logins again: without the anonymous rule, as before
    step "soute access revoke anonymous 'public/**'" "soute access revoke anonymous 'public/**' --data $W/soute-data"
    [ "$SOUTE_AUTH" = auto ] && ORAS_BACKEND=basic   # Basic challenges again
else
    skip "access rules" "distribution has no access rules"
fi

# ---------------------------------------------------------------- 8b. pull-through cache
# A Debian docker-registry on 127.0.0.1 (plain HTTP, anonymous) is the upstream, holding
# the busybox image built above as library/busybox:latest and lab/tool:1. soute caches it
# as docker.io (--mirror) and as quay.io; docker, podman and ctr pull through
# HOST/docker.io/...; then the daemons' own mirror set-ups, as the README writes them:
# dockerd "registry-mirrors" (`docker pull busybox`), containerd hosts.toml (?ns=),
# podman registries.conf. Docker Hub's and quay's names resolve to ::1 for the run (a
# daemon that falls back from its mirror stays on loopback: everything is offline).
# The upstream's access log shows that soute fetched each blob once for all of them.
if [ "$SOUTE" = 1 ] && [ $DOCKER_OK = 1 ]; then
    section "pull-through cache: docker-registry upstream on 127.0.0.1, dockerd/containerd/podman mirrors (auth $SOUTE_AUTH)"
    UPORT=
    for p in $(seq 5200 5249); do port_free "$p" && { UPORT=$p; break; }; done
    UP="127.0.0.1:$UPORT"
    BUSYBOX_IMG="$REG/docker.io/library/busybox:latest"
    start_upstream() {
        [ -n "$UPORT" ] || { echo "no free port in 5200..5249"; return 1; }
        cat >"$W/upstream.yml" <<EOF
version: 0.1
log: {level: info, accesslog: {disabled: false}}
storage: {filesystem: {rootdirectory: $W/upstream-data}, delete: {enabled: true}}
http: {addr: "$UP", secret: soute-e2e-upstream}
EOF
        # REGISTRY_AUTH_FILE (podman's, exported above) would read as distribution's auth.file
        env -u REGISTRY_AUTH_FILE docker-registry serve "$W/upstream.yml" >"$W/upstream.log" 2>&1 9>&- &
        echo $! >"$W/upstream.pid"
        wait_for 30 "curl -sS -f -o /dev/null http://$UP/v2/"
    }
    step "docker-registry upstream on http://$UP (anonymous)" start_upstream
    [ -f "$W/upstream.pid" ] && PIDS_TO_KILL+=("$(cat "$W/upstream.pid")")
    build_cached_image() { # busybox (the layer the private images have) + a layer of its own
        set -e
        echo "hello from the cache" >"$W/cached.txt"
        umoci new --image "$W/oci:cached"
        umoci insert --image "$W/oci:cached" "$W/rootfs/bin" /bin
        umoci insert --image "$W/oci:cached" "$W/cached.txt" /hello.txt
        umoci config --image "$W/oci:cached" --os linux --architecture amd64 \
            --config.cmd /bin/cat --config.cmd /hello.txt
        skopeo copy --dest-tls-verify=false "oci:$W/oci:cached" "docker://$UP/library/busybox:latest"
        skopeo copy --dest-tls-verify=false "oci:$W/oci:cached" "docker://$UP/lab/tool:1"
    }
    step "umoci image only the upstream has -> upstream library/busybox:latest, lab/tool:1" build_cached_image
    hub_hosts() { # files come before DNS in nsswitch: these lines win while the run lasts
        grep -q "registry-1.docker.io .*$HOSTS_MARK\$" /etc/hosts ||
            echo "::1 registry-1.docker.io index.docker.io docker.io auth.docker.io quay.io $HOSTS_MARK" >>/etc/hosts
        getent ahosts registry-1.docker.io | has '^::1 ' && getent ahosts quay.io | has '^::1 '
    }
    step "/etc/hosts: Docker Hub's and quay's names -> ::1 (fallbacks stay on loopback)" hub_hosts
    step "soute upstream add docker.io http://$UP --mirror; quay.io (server running)" \
        "soute upstream add docker.io http://$UP --mirror --data $W/soute-data && soute upstream add quay.io http://$UP --data $W/soute-data && soute upstream list --data $W/soute-data"

    echo "$RPASS" | docker login -u "$RUSER" --password-stdin "$REG" >/dev/null 2>&1
    step "docker pull $BUSYBOX_IMG (cold: through the cache) + run" \
        "docker pull $BUSYBOX_IMG && docker run --rm --network none $BUSYBOX_IMG | has -x 'hello from the cache'"
    step "docker pull $REG/docker.io/busybox:latest (Docker Hub's short form)" \
        "docker pull $REG/docker.io/busybox:latest && test \"\$(docker image inspect -f '{{.Id}}' $REG/docker.io/busybox:latest)\" = \"\$(oci_config_digest cached)\""
    step "podman pull $BUSYBOX_IMG" \
        "echo $RPASS | podman login -u $RUSER --password-stdin $REG && podman pull $BUSYBOX_IMG && podman image exists $BUSYBOX_IMG"
    step "ctr pull $BUSYBOX_IMG --tlscacert --user" \
        "$CTR images pull --tlscacert $CA --user $RUSER:$RPASS $BUSYBOX_IMG"

    # dockerd: registry-mirrors, reloaded with SIGHUP (start_dockerd passed --config-file)
    ANON_GRANTED=0
    mirror_auth() {
        if [ "$SOUTE_AUTH" = basic ]; then
            # Basic mode: no anonymous pulls for docker; the CLI sends the daemon the
            # credentials it has for Docker Hub, which dockerd also gives its mirrors
            local auth; auth=$(printf '%s:%s' "$RUSER" "$RPASS" | base64 -w0)
            jq --arg a "$auth" '.auths["https://index.docker.io/v1/"] = {auth: $a}' \
                "$DOCKER_CONFIG/config.json" >"$W/config.json.new" && mv "$W/config.json.new" "$DOCKER_CONFIG/config.json"
        else
            soute access grant anonymous 'library/**' pull --data "$W/soute-data"
        fi
    }
    step "daemons' credentials for the mirror (basic: Docker Hub's auth entry; else anonymous library/** pull)" mirror_auth &&
        [ "$SOUTE_AUTH" != basic ] && ANON_GRANTED=1
    dockerd_mirror() {
        printf '{"registry-mirrors": ["https://%s"]}\n' "$REG" >"$W/daemon.json"
        kill -HUP "$DOCKERD_PID"
        wait_for 20 "docker info --format '{{json .RegistryConfig.Mirrors}}' | grep -F 'https://$REG/'"
        docker info --format '{{json .RegistryConfig.Mirrors}}'
    }
    step "dockerd registry-mirrors [https://$REG] (daemon.json, SIGHUP)" dockerd_mirror
    step "docker pull busybox (dockerd asks the mirror for library/busybox) + run" \
        "docker pull busybox && docker run --rm --network none busybox | has -x 'hello from the cache' && grep -E '(GET|HEAD) /v2/library/busybox/manifests/latest 200' $W/soute.log"

    # containerd: hosts.toml per registry; containerd adds ?ns=<registry> for a mirror host
    mkdir -p "$W/ctr-mirror/docker.io" "$W/ctr-mirror/quay.io"
    for r in docker.io quay.io; do
        server=https://$r; [ $r = docker.io ] && server=https://registry-1.docker.io
        printf 'server = "%s"\n[host."https://%s"]\n  capabilities = ["pull", "resolve"]\n  ca = "%s"\n' \
            "$server" "$REG" "$CA" >"$W/ctr-mirror/$r/hosts.toml"
    done
    step "ctr pull docker.io/library/busybox:latest (hosts.toml mirror, ?ns=docker.io)" \
        "$CTR images pull --hosts-dir $W/ctr-mirror --user $RUSER:$RPASS docker.io/library/busybox:latest"
    step "ctr pull quay.io/lab/tool:1 (?ns=quay.io picks upstream quay.io, not the mirror)" \
        "$CTR images pull --hosts-dir $W/ctr-mirror --user $RUSER:$RPASS quay.io/lab/tool:1 && soute du --json --data $W/soute-data | jq -e '[.repositories[].name] | index(\"quay.io/lab/tool\") != null and index(\"docker.io/lab/tool\") == null'"

    # podman: a registries.conf mirror at HOST/docker.io (the upstream's namespace)
    cat >"$W/containers/registries.conf" <<EOF
[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "$REG/docker.io"
EOF
    step "podman pull docker.io/library/busybox:latest (registries.conf mirror $REG/docker.io)" \
        "podman rmi -f $BUSYBOX_IMG >/dev/null 2>&1; CONTAINERS_REGISTRIES_CONF=$W/containers/registries.conf podman pull docker.io/library/busybox:latest && podman image exists docker.io/library/busybox:latest"
    fetched_once() { # one upstream request per blob: a GET, or a HEAD for a blob soute had
        local lines; lines=$(grep '"soute/' "$W/upstream.log" | grep -oE '"(GET|HEAD) /v2/library/busybox/blobs/sha256:[0-9a-f]{64} [^"]*" 200' | sed 's/^"[A-Z]* //' | sort | uniq -c)
        echo "$lines"
        grep '"soute/' "$W/upstream.log" | grep -oE '"(GET|HEAD) /v2/[^"]*" [0-9]+'
        [ "$(echo "$lines" | grep -c blobs)" -ge 3 ] && ! echo "$lines" | awk '$1 != 1 {bad=1} END {exit !bad}' &&
            grep '"soute/' "$W/upstream.log" | has -E '"GET /v2/library/busybox/blobs/sha256:[0-9a-f]{64} [^"]*" 200'
    }
    step "upstream's access log: one request per busybox blob for 7 pulls (GET, or HEAD if soute had it)" fetched_once
    step "soute upstream list --json: hits, misses, bytes; no password" \
        "soute upstream list --json --data $W/soute-data | tee /dev/stderr | jq -e '.[] | select(.name==\"docker.io\") | .hits > 0 and .misses > 0 and .bytes_fetched > 0 and .bytes_served > .bytes_fetched and .password_set == false'"
    step "soute du: cached bytes apart from private ones" \
        "soute du --json --data $W/soute-data | tee /dev/stderr | jq -e '.total.cached_bytes > 0 and .total.private_bytes > 0 and (.upstreams | map(.name) | index(\"docker.io\") != null)'"

    # back to the state the next sections expect
    [ "$ANON_GRANTED" = 1 ] && soute access revoke anonymous 'library/**' --data "$W/soute-data" >/dev/null
    printf '{}\n' >"$W/daemon.json"; kill -HUP "$DOCKERD_PID" 2>/dev/null
    $CTR images rm "$BUSYBOX_IMG" docker.io/library/busybox:latest quay.io/lab/tool:1 >/dev/null 2>&1
    docker logout "$REG" >/dev/null 2>&1; podman logout "$REG" >/dev/null 2>&1
elif [ "$SOUTE" = 1 ]; then
    skip "pull-through cache with daemons" "dockerd not running"
fi

# ---------------------------------------------------------------- 8c. policies (issue K)
# A protected tag and a quota, refused through docker and podman with the 403 DENIED
# message soute words (clients print "denied: <message>"); nothing stored past the quota.
if [ "$SOUTE" = 1 ]; then
    section "policies: protected tags and quotas through docker and podman"
    manifest_digest() { # manifest_digest REPO REF: Docker-Content-Digest of a HEAD
        curl -sS -I --cacert "$CA" -u "$RUSER:$RPASS" \
            -H 'Accept: application/vnd.docker.distribution.manifest.v2+json,application/vnd.oci.image.manifest.v1+json' \
            "https://$REG/v2/$1/manifests/$2" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}'
    }
    step "soute tag protect 'lab/prot/**:v*'; soute quota set 'lab/quota/**' 4KB" \
        "soute tag protect 'lab/prot/**:v*' --data $W/soute-data && soute quota set 'lab/quota/**' 4KB --data $W/soute-data"
    if [ $DOCKER_OK = 1 ]; then
        echo "$RPASS" | docker login -u "$RUSER" --password-stdin "$REG" >/dev/null 2>&1
        step "docker push $REG/lab/prot/app:v1 (lab/multi:1)" \
            "docker pull $REG/lab/multi:1 && docker tag $REG/lab/multi:1 $REG/lab/prot/app:v1 && docker push $REG/lab/prot/app:v1"
        xfail "docker push lab/imported:1 over the protected v1" 'denied: tag v1 of lab/prot/app is protected by rule lab/prot/\*\*:v\*' \
            "docker pull $REG/lab/imported:1 && docker tag $REG/lab/imported:1 $REG/lab/prot/app:v1 && docker push $REG/lab/prot/app:v1"
        xfail "docker push past the 4KB quota of lab/quota/**" 'denied: quota exceeded: [0-9]+ of 4000 bytes' \
            "docker tag $REG/lab/multi:1 $REG/lab/quota/app:1 && docker push $REG/lab/quota/app:1"
        docker logout "$REG" >/dev/null 2>&1
    else
        skip "policies through docker" "dockerd did not start (see $W/dockerd.log)"
        step "seed $REG/lab/prot/app:v1 (lab/multi:1) with skopeo" \
            "skopeo copy --src-creds $RUSER:$RPASS --dest-creds $RUSER:$RPASS docker://$REG/lab/multi:1 docker://$REG/lab/prot/app:v1"
    fi
    step "podman login $REG" "echo $RPASS | podman login -u $RUSER --password-stdin $REG"
    xfail "podman push lab/imported:1 over the protected v1" 'tag v1 of lab/prot/app is protected by rule lab/prot/\*\*:v\*' \
        "podman pull $REG/lab/imported:1 && podman tag $REG/lab/imported:1 $REG/lab/prot/app:v1 && podman push $REG/lab/prot/app:v1"
    xfail "podman push past the 4KB quota of lab/quota/**" 'quota exceeded: [0-9]+ of 4000 bytes' \
        "podman tag $REG/lab/imported:1 $REG/lab/quota/papp:1 && podman push $REG/lab/quota/papp:1"
    step "podman logout $REG" "podman logout $REG"
    step "v1 still names lab/multi:1; nothing counted under lab/quota/**" \
        "test -n \"\$(manifest_digest lab/multi 1)\" && test \"\$(manifest_digest lab/prot/app v1)\" = \"\$(manifest_digest lab/multi 1)\" && soute quota list --json --data $W/soute-data | tee /dev/stderr | jq -e '.[] | select(.pattern==\"lab/quota/**\") | .used_bytes == 0'"
    step "soute tag unprotect; soute quota del" \
        "soute tag unprotect 'lab/prot/**:v*' --data $W/soute-data && soute quota del 'lab/quota/**' --data $W/soute-data"
fi

# ---------------------------------------------------------------- 9. registry-side view
section "registry view"
step "catalog lists all pushed repos" \
    "curl -sS --cacert $CA -u $RUSER:$RPASS https://$REG/v2/_catalog | tee /dev/stderr | jq -e '.repositories | contains([\"lab/multi\",\"lab/multi2\",\"lab/podman\",\"lab/multiarch\",\"lab/imported\",\"lab/skopeo\"])'"
if [ "$SOUTE" = 1 ]; then
    # a fresh user: $RUSER has had many wrong passwords in the last minute by now, and
    # soute answers 429 to a user with 10 failures in 60 s, deleted or not
    step "soute user add other (server running): curl -u other -> 200" \
        "printf '%s\n' otherpass | soute user add other --data $W/soute-data && expect_status 200 -u other:otherpass"
    if [ $DOCKER_OK = 1 ]; then
        step "docker login as the new user" "echo otherpass | docker login -u other --password-stdin $REG | grep 'Login Succeeded'"
    fi
    step "soute user del other (server running), user list" \
        "soute user del other --data $W/soute-data && ! soute user list --data $W/soute-data | tee /dev/stderr | has -w other"
    step "deleted user is refused at once: curl -u other -> 401" "expect_status 401 -u other:otherpass"
    if [ $DOCKER_OK = 1 ]; then
        xfail "docker login as the deleted user" "$WRONG_RE" \
            "echo otherpass | docker login -u other --password-stdin $REG"
        docker logout "$REG" >/dev/null 2>&1
    fi
    step "$RUSER still works: curl -u $RUSER -> 200" "expect_status 200 -u $RUSER:$RPASS"
    step "no password in soute's log" "! grep -qE '$RPASS|otherpass' $W/soute.log"
    case " ${SOUTE_SERVE_EXTRA:-} " in *" --blob-store s3 "*)
        step "blob store s3: every pushed blob is an object (soute verify), none in soute-data/blobs/" \
            "grep -q 'blobs in s3' $W/soute.log && test -z \"\$(find $W/soute-data/blobs -type f | head -n 1)\" && soute verify --data $W/soute-data | tee /dev/stderr | grep -E 'verify: [1-9][0-9]* blob\(s\) checked.*: 0 problem'" ;;
    esac
    step "soute stops on SIGTERM within 10 s" \
        "kill -TERM $REGISTRY_PID && for i in \$(seq 100); do alive $REGISTRY_PID || exit 0; sleep 0.1; done; exit 1"
fi
# cleanup + summary run from the EXIT trap
