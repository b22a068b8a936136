#!/usr/bin/env bash
# End-to-end check of the Debian package on a clean Debian system, as
# docs/deploy.md tells an operator to deploy it:
#
#   packaging/test/install-in-chroot.sh target/debian/weightwatch_*.deb
#
# 1. debootstraps a minimal Debian (bookworm) into a directory (reused from
#    WW_E2E_BASE=DIR.tar when given: debootstrap's tarball, for reruns);
# 2. installs the package there with apt-get (dependencies from the Debian
#    mirror) and checks the user, the directories, the conffiles;
# 3. creates a veth pair, then starts the dashboard and a sensor on one end
#    with the units' own ExecStart lines (read from the installed units,
#    %i/%I/%H and Environment/EnvironmentFile expanded), as the unit's user
#    and with the unit's capabilities (setpriv: ambient CAP_NET_RAW and
#    CAP_NET_ADMIN, that bounding set, no_new_privs). systemd is not PID 1 in
#    a chroot, so the units' sandboxing options (ProtectSystem= …) are not
#    exercised here: `systemd-analyze verify` checks them in the test suite;
# 4. sends frames into the other end and waits until the sensor's stats
#    (packets > 0) are on the dashboard's /api/v1/sensors;
# 5. rotates the EVE file with the package's logrotate file (logrotate -f)
#    and the SIGHUP its postrotate sends, and checks the sensor writes to the
#    new file;
# 6. reinstalls the package (postinst run again on a configured system).
#
# Needs root, debootstrap, iproute2, curl, python3 and the Debian mirror.
# Not part of scripts/test.sh (minutes of downloads and a root chroot).
set -euo pipefail

deb=${1:?usage: $0 PACKAGE.deb}
deb=$(realpath "$deb")
[[ $(id -u) -eq 0 ]] || { echo "e2e: needs root" >&2; exit 2; }
for t in debootstrap ip curl python3 chroot; do
  command -v "$t" >/dev/null || { echo "e2e: $t is missing" >&2; exit 2; }
done

work=$(mktemp -d /tmp/ww-e2e.XXXXXX)
root=$work/root
veth=wwe2e0
peer=wwe2e1
port=$((20000 + RANDOM % 20000))
pids=()

cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  sleep 1
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  ip link del "$veth" 2>/dev/null
  for m in dev/pts dev proc sys; do umount -l "$root/$m" 2>/dev/null; done
  if [[ -z "${WW_E2E_KEEP:-}" ]]; then rm -rf "$work"; else echo "e2e: kept $work" >&2; fi
}
trap cleanup EXIT

say() { echo "e2e: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }
in_root() { chroot "$root" "$@"; }

# --- 1. a clean Debian -----------------------------------------------------
if [[ -n "${WW_E2E_BASE:-}" && -f "${WW_E2E_BASE}" ]]; then
  say "unpacking $WW_E2E_BASE"
  mkdir -p "$root" && tar -xf "$WW_E2E_BASE" -C "$root"
else
  say "debootstrap bookworm into $root"
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; fail "debootstrap"; }
  if [[ -n "${WW_E2E_BASE:-}" ]]; then tar -cf "$WW_E2E_BASE" -C "$root" .; fi
fi
mount -t proc proc "$root/proc"
mount -t sysfs sys "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
cp /etc/resolv.conf "$root/etc/resolv.conf"
echo "ww-e2e-host" >"$root/etc/hostname"

# --- 2. install the package ------------------------------------------------
say "installing $(basename "$deb") with apt-get"
cp "$deb" "$root/tmp/weightwatch.deb"
export DEBIAN_FRONTEND=noninteractive
in_root apt-get update -qq >"$work/apt.log" 2>&1 || { tail "$work/apt.log" >&2; fail "apt-get update"; }
in_root apt-get install -y -qq logrotate /tmp/weightwatch.deb >>"$work/apt.log" 2>&1 ||
  { tail -30 "$work/apt.log" >&2; fail "apt-get install"; }
in_root getent passwd weightwatch >/dev/null || fail "no weightwatch user"
for d in /var/lib/weightwatch /var/log/weightwatch /var/lib/weightwatch/api-logs; do
  [[ $(in_root stat -c %U:%a "$d") == weightwatch:750 ]] || fail "$d is $(in_root stat -c %U:%a "$d")"
done
[[ $(stat -c %a "$root/etc/weightwatch/weightwatch.env") == 600 ]] || fail "weightwatch.env is not 0600"
in_root dpkg-query --showformat='${Conffiles}\n' --show weightwatch | grep -q /etc/weightwatch/weightwatch.toml ||
  fail "weightwatch.toml is not a conffile"
version=$(in_root weightwatch --version)
say "installed: $version"

# --- 3. the services, as their units start them ----------------------------
# The ExecStart of an installed unit with its continuation lines joined and
# %i, %I, %H, ${VAR} and $VAR expanded from Environment= and EnvironmentFile=.
unit_cmd() {
  local unit=$1 instance=${2:-} file
  file="$root/lib/systemd/system/$(sed 's/@.*\.service$/@.service/' <<<"$unit")"
  python3 - "$file" "$instance" "$(cat "$root/etc/hostname")" "$root" <<'PY'
import re, shlex, sys
path, inst, host, root = sys.argv[1:]
text = re.sub(r"\\\n", " ", open(path).read())
spec = lambda s: s.replace("%i", inst).replace("%I", inst).replace("%H", host)
env, cmd = {}, None
for line in text.splitlines():
    key, _, val = line.partition("=")
    if key == "Environment":
        k, _, v = spec(val).partition("=")
        env[k] = v
    elif key == "EnvironmentFile":
        f = spec(val).lstrip("-")
        try:
            for l in open(root + f):
                l = l.strip()
                if l and not l.startswith("#") and "=" in l:
                    k, _, v = l.partition("=")
                    env[k.strip()] = v.strip().strip('"')
        except FileNotFoundError:
            pass
    elif key == "ExecStart":
        cmd = spec(val)
words = []
for w in shlex.split(cmd):
    if re.fullmatch(r"\$\{?(\w+)\}?", w):
        words += env.get(re.sub(r"\W", "", w[1:]), "").split()
    else:
        words.append(re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), ""), w))
print(" ".join(shlex.quote(w) for w in words))
print(" ".join(shlex.quote(f"{k}={v}") for k, v in env.items()))
PY
}

# Run a unit's ExecStart in the chroot as weightwatch, with `caps` ambient.
start_unit() {
  local unit=$1 instance=$2 caps=$3 log=$4 out cmd env
  out=$(unit_cmd "$unit" "$instance")
  cmd=$(sed -n 1p <<<"$out")
  env=$(sed -n 2p <<<"$out")
  say "starting $unit${instance:+ ($instance)}: $cmd"
  local capargs=(--bounding-set=-all)
  if [[ -n "$caps" ]]; then
    capargs=(--inh-caps="$caps" --ambient-caps="$caps" --bounding-set="-all,$caps")
  fi
  # exec: the pid recorded is the service's own (chroot, env and setpriv exec).
  (eval "exec chroot '$root' env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin $env \
    setpriv --reuid=weightwatch --regid=weightwatch --init-groups ${capargs[*]} --no-new-privs \
    $cmd") >"$log" 2>&1 &
  pids+=($!)
}

as_ww() { in_root setpriv --reuid=weightwatch --regid=weightwatch --init-groups --no-new-privs "$@"; }

db=/var/lib/weightwatch/weightwatch.db
ingest=$(as_ww weightwatch token create --scope ingest --name e2e-sensors --db "$db" 2>/dev/null)
read=$(as_ww weightwatch token create --scope read --name e2e-reader --db "$db" 2>/dev/null)
[[ -n "$ingest" && -n "$read" ]] || fail "token create"
printf 'WEIGHTWATCH_TOKEN=%s\n' "$ingest" >>"$root/etc/weightwatch/weightwatch.env"
printf 'WEIGHTWATCH_LISTEN=127.0.0.1:%s\n' "$port" >"$root/etc/weightwatch/dashboard.env"
# The operator's edits of the conffile: the dashboard to send to, and stats
# every 2 s instead of every minute (so the check is quick).
sed -i -e "s|^# dashboard_url = .*|dashboard_url = \"http://127.0.0.1:$port\"|" \
  -e 's/^stats_interval_secs = 60/stats_interval_secs = 2/' "$root/etc/weightwatch/weightwatch.toml"
grep -q "^dashboard_url" "$root/etc/weightwatch/weightwatch.toml" || fail "could not set dashboard_url"

start_unit weightwatch-dashboard.service "" "" "$work/dashboard.log"
for _ in $(seq 50); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || { cat "$work/dashboard.log" >&2; fail "dashboard not up"; }
say "dashboard up on 127.0.0.1:$port"

ip link add "$veth" type veth peer name "$peer"
ip link set "$veth" up
ip link set "$peer" up
start_unit weightwatch-capture@.service "$veth" "+net_raw,+net_admin" "$work/sensor.log"

# --- 4. traffic in, stats out ----------------------------------------------
python3 - "$peer" <<'PY' &
import socket, struct, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
def csum(b):
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    t = (t >> 16) + (t & 0xFFFF); t += t >> 16
    return ~t & 0xFFFF
for i in range(600):
    payload = b"weightwatch e2e %d" % i
    udp = struct.pack("!HHHH", 40000, 9999, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0, 64, 17, 0,
                     bytes([10, 99, 0, 1]), bytes([10, 99, 0, 2]))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    s.send(b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip + udp)
    time.sleep(0.05)
PY
pids+=($!)

sensor_id="ww-e2e-host-$veth"
got=""
for _ in $(seq 60); do
  got=$(curl -fsS -H "Authorization: Bearer $read" "http://127.0.0.1:$port/api/v1/sensors" |
    python3 -c 'import json,sys
want = sys.argv[1]
for s in json.load(sys.stdin)["sensors"]:
    if s["sensor_id"] == want and s["packets"] > 0:
        print(s["sensor_id"], "packets", s["packets"], "drops", s["drops"], "events", s["events"])' "$sensor_id" || true)
  [[ -n "$got" ]] && break
  sleep 1
done
[[ -n "$got" ]] || { cat "$work/sensor.log" >&2; fail "no stats of $sensor_id on the dashboard"; }
say "on the dashboard: $got"

# --- 5. log rotation -------------------------------------------------------
eve=$root/var/log/weightwatch/eve-$veth.json
[[ -s "$eve" ]] || fail "no EVE file $eve"
in_root logrotate -f /etc/logrotate.d/weightwatch || fail "logrotate"
[[ -s "$eve.1" ]] || fail "logrotate did not rotate $eve"
# No systemd here: send the SIGHUP that the postrotate's `systemctl kill` sends.
sensor_pid=${pids[1]}
kill -0 "$sensor_pid" || fail "sensor not running"
kill -HUP "$sensor_pid"
for _ in $(seq 30); do [[ -s "$eve" ]] && break; sleep 0.5; done
[[ -s "$eve" ]] || fail "the sensor did not reopen $eve after SIGHUP"
kill -0 "$sensor_pid" || fail "the sensor died on SIGHUP"
say "EVE rotated: $(wc -l <"$eve.1") lines in eve-$veth.json.1, $(wc -l <"$eve") in the reopened file"

# --- 6. reinstall (upgrade path of the maintainer scripts) ------------------
in_root apt-get install -y -qq --reinstall /tmp/weightwatch.deb >>"$work/apt.log" 2>&1 ||
  { tail -20 "$work/apt.log" >&2; fail "reinstall"; }
grep -q "^WEIGHTWATCH_TOKEN=" "$root/etc/weightwatch/weightwatch.env" || fail "reinstall lost the token (conffile)"

kill -TERM "$sensor_pid"
for _ in $(seq 40); do kill -0 "$sensor_pid" 2>/dev/null || break; sleep 0.5; done
kill -0 "$sensor_pid" 2>/dev/null && fail "sensor did not stop on SIGTERM"
say "PASSED: package installed, dashboard and sensor on $veth started from their units, stats on the dashboard, EVE rotated and reopened"
