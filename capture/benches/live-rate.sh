#!/usr/bin/env bash
# Live drop-free rate of the sensor (issue 19 item 5). A benchmark, not a
# test: run it by hand, as root, on a machine that is otherwise idle.
#
# It makes a network namespace with a veth pair, runs
# `weightwatch capture -i <veth> --workers N` inside the namespace, replays
# the realistic capture (`weightwatch fixtures realistic`) into the other
# end with `tcpreplay --mbps R`, and reads the sensor's final counters
# (`stats.json`): a run is drop-free when the sensor saw every packet
# tcpreplay sent and `capture.kernel_drops` and `capture.queue_drops` are 0.
# For each worker count it sends once at `--topspeed`, then doubles R from
# $START_MBPS until a run drops, then bisects between the last clean and the
# first dropping rate ($BISECT steps).
#
#   capture/benches/live-rate.sh [WORKERS...]        (default: 1 2)
#
# Environment:
#   WEIGHTWATCH        binary (default: target/perf/weightwatch, else target/debug/weightwatch)
#   SIZE_MB, SEED      realistic capture to replay (default 100, 19)
#   BENCH_DIR          where the capture is written/reused (default /tmp/live-rate-bench)
#   START_MBPS         first rate of the doubling (default 50)
#   MAX_MBPS           stop doubling here (default 6400)
#   BISECT             bisection steps after the doubling (default 3)
#   PCAP_BUFFER_MB     libpcap ring ([capture] pcap_buffer_bytes; default 64)
#   QUEUE_BATCHES      batches queued per worker ([capture] queue_batches; default 64)
#   LOOPS              replay the capture this many times per run (tcpreplay --loop;
#                      default 3: one pass at 600 Mbit/s lasts ~1.4 s, which the
#                      pcap ring and the queues could absorb without keeping up)
set -euo pipefail

cd "$(dirname "$0")/../.."
if [[ $(id -u) != 0 ]]; then
    echo "live-rate.sh: needs root (network namespace, veth, raw capture)" >&2
    exit 2
fi
for tool in ip tcpreplay python3; do
    command -v "$tool" >/dev/null || {
        echo "live-rate.sh: \`$tool\` is not installed (scripts/setup.sh --bench)" >&2
        exit 2
    }
done
WW=${WEIGHTWATCH:-}
if [[ -z $WW ]]; then
    WW=target/perf/weightwatch
    [[ -x $WW ]] || WW=target/debug/weightwatch
fi
WW=$(realpath "$WW")
SIZE_MB=${SIZE_MB:-100}
SEED=${SEED:-19}
BENCH_DIR=${BENCH_DIR:-/tmp/live-rate-bench}
START_MBPS=${START_MBPS:-50}
MAX_MBPS=${MAX_MBPS:-6400}
BISECT=${BISECT:-3}
PCAP_BUFFER_MB=${PCAP_BUFFER_MB:-64}
QUEUE_BATCHES=${QUEUE_BATCHES:-64}
LOOPS=${LOOPS:-3}
WORKERS=("$@")
[[ ${#WORKERS[@]} -gt 0 ]] || WORKERS=(1 2)

mkdir -p "$BENCH_DIR"
PCAP=$BENCH_DIR/realistic_${SIZE_MB}m_s${SEED}.pcap
[[ -f $PCAP ]] || "$WW" fixtures realistic --size-mb "$SIZE_MB" --seed "$SEED" --out "$BENCH_DIR" -q >/dev/null

NS=wwrate$$
HOST_IF=wwrh$$
PEER_IF=wwrn$$
WORK=$(mktemp -d)
SENSOR=
cleanup() {
    set +e
    if [[ -n $SENSOR ]]; then
        kill "$SENSOR" 2>/dev/null
        wait "$SENSOR" 2>/dev/null
    fi
    ip link del "$HOST_IF" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap "exit 130" INT TERM

# The frames of the capture are up to 1514 bytes; a larger MTU keeps any
# bigger one from being refused by the veth (tcpreplay counts it failed).
ip netns add "$NS"
ip link add "$HOST_IF" mtu 9000 type veth peer name "$PEER_IF" mtu 9000
ip link set "$PEER_IF" netns "$NS"
ip link set "$HOST_IF" up
ip -n "$NS" link set "$PEER_IF" up
ip -n "$NS" link set lo up
# No IPv6 on the pair: router solicitations and MLD reports would be
# captured too (the sensor would see packets tcpreplay did not send).
sysctl -qw "net.ipv6.conf.$HOST_IF.disable_ipv6=1"
ip netns exec "$NS" sysctl -qw "net.ipv6.conf.$PEER_IF.disable_ipv6=1"
cat >"$WORK/weightwatch.toml" <<EOF
[capture]
pcap_buffer_bytes = $((PCAP_BUFFER_MB << 20))
queue_batches = $QUEUE_BATCHES
EOF

# One run: sensor up, replay at $2 (a number of Mbit/s or "top"), sensor
# stopped; prints "sent got kernel_drops queue_drops actual_mbps".
run_once() {
    local workers=$1 rate=$2
    rm -rf "$WORK/log" && mkdir -p "$WORK/log"
    ip netns exec "$NS" "$WW" capture -c "$WORK/weightwatch.toml" -i "$PEER_IF" \
        --workers "$workers" --log-dir "$WORK/log" --eve /dev/null \
        >"$WORK/sensor.out" 2>"$WORK/sensor.err" &
    SENSOR=$!
    # Setup wait (not a measurement): the sensor logs when its handle is open.
    for _ in $(seq 300); do
        grep -q "capture handle open" "$WORK/sensor.err" && break
        kill -0 "$SENSOR" 2>/dev/null || break
        sleep 0.1
    done
    grep -q "capture handle open" "$WORK/sensor.err" || {
        echo "sensor did not start (running: $(kill -0 "$SENSOR" 2>/dev/null && echo yes || echo no)):" >&2
        cat "$WORK/sensor.err" "$WORK/sensor.out" >&2
        exit 1
    }
    local speed=(--mbps "$rate")
    [[ $rate == top ]] && speed=(--topspeed)
    tcpreplay -q -i "$HOST_IF" "${speed[@]}" --loop "$LOOPS" "$PCAP" >"$WORK/replay.out" 2>&1 || {
        cat "$WORK/replay.out" >&2
        exit 1
    }
    # Let the workers drain what is queued, then stop the sensor (SIGINT:
    # it writes stats.json at exit).
    sleep 2
    # CPU seconds of each sensor thread (utime + stime), to tell which
    # thread was the limit: the reader (main thread) or the workers.
    local tck
    tck=$(getconf CLK_TCK)
    for t in /proc/"$SENSOR"/task/*; do
        echo "$(cat "$t/comm") $(cut -d')' -f2 "$t/stat" | awk -v h="$tck" '{printf "%.2f", ($12 + $13) / h}')"
    done >"$WORK/threads"
    kill -INT "$SENSOR"
    wait "$SENSOR" || true
    SENSOR=
    python3 - "$WORK/log/stats.json" "$WORK/replay.out" <<'PY'
import json, re, sys
stats = json.load(open(sys.argv[1]))["stats"]
def get(section, key):
    s = stats.get(section, {})
    return int(s.get(key, 0)) if isinstance(s, dict) else 0
out = open(sys.argv[2]).read()
sent = int(re.search(r"Successful packets:\s+(\d+)", out).group(1))
mbps = re.search(r"Rated: [\d.]+ Bps, ([\d.]+) Mbps", out)
secs = re.search(r"sent in ([\d.]+) seconds", out)
print(sent, get("capture", "packets"), get("capture", "kernel_drops"),
      get("capture", "queue_drops"), mbps.group(1) if mbps else "?",
      secs.group(1) if secs else "?")
PY
}

# run_once in this shell (so the trap knows the sensor); sets $r.
measure() {
    run_once "$1" "$2" >"$WORK/result"
    read -r s g k q m secs <"$WORK/result"
    r=clean
    clean "$s" "$g" "$k" "$q" || r=DROPS
    # Busiest threads first: name=CPU seconds over the replay's seconds.
    local cpu
    cpu=$(sort -k2 -rn "$WORK/threads" | head -4 | awk '{printf "%s=%s ", $1, $2}')
    printf '%-8s %-10s %10s %10s %8s %8s %10s %-6s %8s  %s\n' "$1" "$2" "$s" "$g" "$k" "$q" "$m" "$r" "$secs" "$cpu"
}

# Clean: every sent packet seen, no kernel or queue drop.
clean() { (($2 >= $1 && $3 == 0 && $4 == 0)); }

echo "binary $WW ($(git rev-parse --short HEAD)), capture $PCAP ($(du -m "$PCAP" | cut -f1) MB)"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg), cores: $(nproc), pcap buffer ${PCAP_BUFFER_MB} MiB, queue ${QUEUE_BATCHES} batches per worker, ${LOOPS} passes per run"
printf '%-8s %-10s %10s %10s %8s %8s %10s %-6s %8s  %s\n' workers rate sent seen kdrops qdrops sent_mbps result replay_s "thread=cpu_s"
for w in "${WORKERS[@]}"; do
    measure "$w" top
    good=0 bad=0 best=0 short=0 rate=$START_MBPS
    [[ $r == clean ]] && best=$m
    while ((rate <= MAX_MBPS)); do
        measure "$w" "$rate"
        # tcpreplay falls short of the asked rate when it has no CPU left:
        # asking more then measures the sender, not the sensor.
        if [[ $r == clean ]]; then
            ((${m%.*} * 10 < rate * 9)) && short=1
            good=$rate
            [[ ${m%.*} -gt ${best%.*} ]] && best=$m
            ((short)) && break
            rate=$((rate * 2))
        else
            bad=$rate
            break
        fi
    done
    if ((bad > 0 && good > 0)); then
        for _ in $(seq "$BISECT"); do
            rate=$(((good + bad) / 2))
            measure "$w" "$rate"
            if [[ $r == clean ]]; then
                good=$rate
                [[ ${m%.*} -gt ${best%.*} ]] && best=$m
            else
                bad=$rate
            fi
        done
    fi
    echo "workers=$w: highest drop-free rate ${best} Mbit/s as sent (asked ${good})," \
        "first dropping asked: $( ((bad > 0)) && echo "$bad Mbit/s" || echo none)" \
        "$( ((short)) && echo "; tcpreplay could not send at the asked rate (sender-limited)")"
done
