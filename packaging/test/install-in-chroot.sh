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
# 3. creates a veth pair, then starts the dashboard and a sensor on one end:
#    - with systemd-nspawn on the host (WW_E2E_MODE=nspawn, the default when
#      it is there): the Debian boots with systemd as PID 1 in a container
#      sharing the host's network, the package is installed there, and the
#      services are started with `systemctl enable --now`, sandboxing and all;
#    - otherwise (WW_E2E_MODE=chroot) with the units' own ExecStart lines
#      (read from the installed units, %i/%I/%H and Environment /
#      EnvironmentFile expanded) as the unit's user with the unit's
#      capabilities (setpriv: ambient CAP_NET_RAW and CAP_NET_ADMIN, that
#      bounding set, no_new_privs); the sandboxing options are then not
#      exercised (`systemd-analyze verify` checks them in the test suite);
# 4. sends frames into the other end and waits until the sensor's stats
#    (packets > 0) are on the dashboard's /api/v1/sensors;
# 5. rotates the EVE file with the package's logrotate file (logrotate -f;
#    under systemd its postrotate sends the SIGHUP, in a chroot the script
#    does) and checks the sensor writes on to the new file;
# 6. reinstalls the package (postinst run again on a configured system),
#    and stops the sensor (SIGTERM: a clean exit).
# Between 4 and 5 the analyzer's service runs once on labelled synthetic
# API logs (`weightwatch fixtures logs`) and its alerts reach the dashboard.
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

mode=${WW_E2E_MODE:-}
if [[ -z "$mode" ]]; then
  if command -v systemd-nspawn >/dev/null && command -v nsenter >/dev/null; then mode=nspawn; else mode=chroot; fi
fi
work=$(mktemp -d /tmp/ww-e2e.XXXXXX)
root=$work/root
veth=wwe2e0
peer=wwe2e1
port=$((20000 + RANDOM % 20000))
pids=()
nspawn_pid=""
leader=""

unmount_all() {
  for m in dev/pts dev proc sys; do umount -l "$root/$m" 2>/dev/null || true; done
}

cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  if [[ -n "$nspawn_pid" ]]; then
    kill "$nspawn_pid" 2>/dev/null # nspawn shuts the container down cleanly
    for _ in $(seq 40); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$nspawn_pid" 2>/dev/null
  fi
  sleep 1
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  ip link del "$veth" 2>/dev/null
  unmount_all
  if [[ -z "${WW_E2E_KEEP:-}" ]]; then rm -rf "$work"; else echo "e2e: kept $work" >&2; fi
}
trap cleanup EXIT

say() { echo "e2e: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }
# A command on the installed system: in the booted container, or the chroot.
in_root() {
  if [[ -n "$leader" ]]; then
    nsenter --target "$leader" --all env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
      DEBIAN_FRONTEND=noninteractive "$@"
  else
    chroot "$root" "$@"
  fi
}

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

export DEBIAN_FRONTEND=noninteractive
in_root apt-get update -qq >"$work/apt.log" 2>&1 || { tail "$work/apt.log" >&2; fail "apt-get update"; }
ip link add "$veth" type veth peer name "$peer"
ip link set "$veth" up
ip link set "$peer" up

if [[ $mode == nspawn ]]; then
  say "installing systemd, then booting the Debian with systemd-nspawn (host network)"
  in_root apt-get install -y -qq --no-install-recommends systemd systemd-sysv dbus >>"$work/apt.log" 2>&1 ||
    { tail -30 "$work/apt.log" >&2; fail "apt-get install systemd"; }
  unmount_all
  # Host network: the sensor sees the veth. CAP_NET_ADMIN is not in
  # nspawn's default set without a private network; the sensor unit needs it.
  systemd-nspawn -D "$root" -b --register=no --keep-unit --console=pipe \
    --capability=CAP_NET_ADMIN -M "ww-e2e-$$" </dev/null >"$work/boot.log" 2>&1 &
  nspawn_pid=$!
  state=""
  for _ in $(seq 120); do
    leader=$(pgrep -P "$nspawn_pid" | head -1 || true)
    if [[ -n "$leader" ]]; then
      state=$(in_root systemctl is-system-running 2>/dev/null || true)
      [[ $state == running || $state == degraded ]] && break
    fi
    sleep 0.5
  done
  [[ $state == running || $state == degraded ]] || { cat "$work/boot.log" >&2; fail "container did not boot ($state)"; }
  say "container up: systemd ${state}"
fi

# --- 2. install the package ------------------------------------------------
say "installing $(basename "$deb") with apt-get"
cp "$deb" "$root/var/tmp/weightwatch.deb"
in_root apt-get install -y -qq logrotate /var/tmp/weightwatch.deb >>"$work/apt.log" 2>&1 ||
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
  python3 - "$file" "$instance" "$(in_root cat /proc/sys/kernel/hostname)" "$root" <<'PY'
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
  local run="exec chroot '$root' env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin $env \
    setpriv --reuid=weightwatch --regid=weightwatch --init-groups ${capargs[*]} --no-new-privs \
    $cmd"
  if [[ ${5:-} == oneshot ]]; then
    (eval "$run") >"$log" 2>&1
    return
  fi
  # exec: the pid recorded is the service's own (chroot, env and setpriv exec).
  (eval "$run") >"$log" 2>&1 &
  pids+=($!)
}

# A service's log: the journal under systemd, the output file in a chroot.
service_log() {
  if [[ $mode == nspawn ]]; then in_root journalctl -u "$1" --no-pager >&2 || true; else cat "$2" >&2; fi
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

if [[ $mode == nspawn ]]; then
  in_root systemctl enable --now weightwatch-dashboard.service || fail "systemctl enable --now weightwatch-dashboard"
else
  start_unit weightwatch-dashboard.service "" "" "$work/dashboard.log"
fi
for _ in $(seq 50); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || { service_log weightwatch-dashboard "$work/dashboard.log"; fail "dashboard not up"; }
say "dashboard up on 127.0.0.1:$port"

if [[ $mode == nspawn ]]; then
  in_root systemctl enable --now "weightwatch-capture@$veth.service" || fail "systemctl enable --now weightwatch-capture@$veth"
else
  start_unit weightwatch-capture@.service "$veth" "+net_raw,+net_admin" "$work/sensor.log"
fi

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

# %H-%i: the host name the services see.
sensor_id="$(in_root cat /proc/sys/kernel/hostname)-$veth"
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
[[ -n "$got" ]] || { service_log "weightwatch-capture@$veth" "$work/sensor.log"; fail "no stats of $sensor_id on the dashboard"; }
say "on the dashboard: $got"

# --- 4b. the analyzer's service on labelled synthetic API logs -------------
as_ww weightwatch fixtures logs --accounts 150 --days 2 --out /var/lib/weightwatch/e2e-logs >/dev/null 2>&1 ||
  fail "fixtures logs"
as_ww mv /var/lib/weightwatch/e2e-logs/requests.jsonl /var/lib/weightwatch/api-logs/
if [[ $mode == nspawn ]]; then
  in_root systemctl start weightwatch-analyze.service # a oneshot: returns when it is done
  result=$(in_root systemctl show -p Result --value weightwatch-analyze.service)
  [[ $result == success ]] || { service_log weightwatch-analyze; fail "analyzer run: $result"; }
  in_root systemctl is-enabled --quiet weightwatch-analyze.timer 2>/dev/null ||
    in_root systemctl enable --now weightwatch-analyze.timer || fail "enable the analyzer's timer"
else
  start_unit weightwatch-analyze.service "" "" "$work/analyze.log" oneshot ||
    { cat "$work/analyze.log" >&2; fail "analyzer run"; }
fi
[[ -s $root/var/lib/weightwatch/scores.csv ]] || fail "no scores.csv"
alerts=""
for _ in $(seq 60); do
  alerts=$(curl -fsS -H "Authorization: Bearer $read" \
    "http://127.0.0.1:$port/api/v1/alerts?category=distillation&limit=1000" |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["alerts"]))' || true)
  [[ ${alerts:-0} -gt 0 ]] && break
  sleep 1
done
[[ ${alerts:-0} -gt 0 ]] || { service_log weightwatch-analyze "$work/analyze.log"; fail "no distillation alert on the dashboard"; }
say "analyzer run: $(($(wc -l <"$root/var/lib/weightwatch/scores.csv") - 1)) accounts scored, $alerts distillation alerts on the dashboard"

# --- 5. log rotation -------------------------------------------------------
eve=$root/var/log/weightwatch/eve-$veth.json
[[ -s "$eve" ]] || fail "no EVE file $eve"
in_root logrotate -f /etc/logrotate.d/weightwatch || fail "logrotate"
[[ -s "$eve.1" ]] || fail "logrotate did not rotate $eve"
if [[ $mode == nspawn ]]; then
  main_pid=$(in_root systemctl show -p MainPID --value "weightwatch-capture@$veth.service")
else
  # No systemd: send the SIGHUP that the postrotate's `systemctl kill` sends.
  sensor_pid=${pids[1]}
  kill -0 "$sensor_pid" || fail "sensor not running"
  kill -HUP "$sensor_pid"
fi
for _ in $(seq 30); do [[ -s "$eve" ]] && break; sleep 0.5; done
[[ -s "$eve" ]] || { service_log "weightwatch-capture@$veth" "$work/sensor.log"; fail "the sensor did not reopen $eve after SIGHUP"; }
if [[ $mode == nspawn ]]; then
  [[ $(in_root systemctl show -p MainPID --value "weightwatch-capture@$veth.service") == "$main_pid" ]] ||
    fail "the sensor restarted on SIGHUP"
else
  kill -0 "$sensor_pid" || fail "the sensor died on SIGHUP"
fi
say "EVE rotated: $(wc -l <"$eve.1") lines in eve-$veth.json.1, $(wc -l <"$eve") in the reopened file"

# --- 6. reinstall (upgrade path of the maintainer scripts) ------------------
in_root apt-get install -y -qq --reinstall /var/tmp/weightwatch.deb >>"$work/apt.log" 2>&1 ||
  { tail -20 "$work/apt.log" >&2; fail "reinstall"; }
grep -q "^WEIGHTWATCH_TOKEN=" "$root/etc/weightwatch/weightwatch.env" || fail "reinstall lost the token (conffile)"

if [[ $mode == nspawn ]]; then
  in_root systemctl is-active --quiet weightwatch-dashboard.service "weightwatch-capture@$veth.service" ||
    fail "a service is not active after the reinstall"
  in_root systemctl stop "weightwatch-capture@$veth.service"
  result=$(in_root systemctl show -p Result --value "weightwatch-capture@$veth.service")
  [[ $result == success ]] || { service_log "weightwatch-capture@$veth"; fail "sensor stop: $result"; }
else
  kill -TERM "$sensor_pid"
  for _ in $(seq 40); do kill -0 "$sensor_pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$sensor_pid" 2>/dev/null && fail "sensor did not stop on SIGTERM"
fi
say "PASSED ($mode): package installed, dashboard and sensor on $veth started from their units, stats on the dashboard, analyzer run's alerts on the dashboard, EVE rotated and reopened, reinstalled, sensor stopped cleanly"
