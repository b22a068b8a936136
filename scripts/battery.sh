#!/usr/bin/env bash
# A battery of behaviours for one labelled log (docs/analyzer.md, "session 16,
# red20: behaviours not tried before"): the log itself, its benign accounts
# alone, a few-benign variant, and `fixtures evade` combinations the earlier
# sessions did not measure (transforms together, pacing with rewriting, `mix`
# and `host` at low and high shares; since session 19 `redact` and `unlogged`:
# the attacks' prompts logged as hashes only, or not at all), each analysed
# with the bundled model.
#   ./scripts/battery.sh BINARY OUT gen SEED ACCOUNTS DAYS   # a generator set
#   ./scripts/battery.sh BINARY OUT dir LOGS LABELS           # an existing set
# For each set prints recall per attack style and false positives per benign
# style, with which rule decided each flagged account: its own alert's
# `decided_by` (account, key, client, part) or, when it has none, the flagged
# account cluster (`cluster`) or client-slice cluster (`slice`) it is a member
# of; "<--" marks a style that lost more than a third of its accounts, a hydra
# member missed, or a benign style with a flagged account. Missed accounts are
# listed with their scores.
# OUT keeps each set's report (NAME.txt), labels (NAME.labels.csv), scores
# (NAME.scores.csv), alerts (NAME.eve.json) and summary (NAME.summ); the sets themselves (zstd JSON
# Lines, 40-300 MB each at 600 x 3) are deleted after analysis unless KEEP=1.
# SETS="base mix0.6 ..." runs a subset; EVADE_SEED (default the generator
# seed, or 31) seeds the transforms. Needs python3 and zstd.
set -euo pipefail
ww="$(realpath "$1")"; out="$(realpath -m "$2")"; mode="$3"; shift 3
mkdir -p "$out"
summ="$out/summarise.py"
if [ "$mode" = gen ]; then
    seed="$1"; nice "$ww" fixtures logs --seed "$1" --accounts "$2" --days "$3" \
        --out "$out/base" >/dev/null
    zstd -q -f --rm -T1 "$out/base/requests.jsonl"
    logs="$out/base/requests.jsonl.zst"; labels="$out/base/labels.csv"
else
    seed=31; logs="$(realpath "$1")"; labels="$(realpath "$2")"
fi
eseed="${EVADE_SEED:-$seed}"
sets="${SETS:-base benign fewbenign mpc0.5 pef0.5 mc1 all1 p20p p20c mix0.1 mix0.45 mix0.6 host0.05 host0.5 hostadopt0.05 redact1 unlogged1}"

cat >"$summ" <<'PY'
import csv, json, sys, collections
lab = {r['account_id']: r for r in csv.DictReader(open(sys.argv[1]))}
sc = {r['account_id']: r for r in csv.DictReader(open(sys.argv[2]))}
own, via = {}, collections.defaultdict(set)
for line in open(sys.argv[3]):
    d = json.loads(line)
    a = d.get('alert')
    if not a:
        continue
    if a['category'] == 'distillation':
        k = d['evidence'].get('decided_by', '?').split(':')[0]
        own[d['account_id']] = {'api_key': 'key'}.get(k, k)
    else:
        kind = 'slice' if d['cluster_id'].startswith('sl-') else 'cluster'
        for m in d['members']:
            via[m].add(kind)
rows = collections.defaultdict(lambda: [0, 0, collections.Counter(), []])
for a, r in lab.items():
    s, st = sc.get(a), (r['label'], r['scenario'])
    rows[st][0] += 1
    if s and s['flagged'] == 'true':
        rows[st][1] += 1
        rows[st][2][own.get(a) or '+'.join(sorted(via[a])) or '?'] += 1
    elif r['label'] == 'distill':
        rows[st][3].append((a, float(s['score']) if s else -1.0))
tot = {l: [sum(v[i] for k, v in rows.items() if k[0] == l) for i in (0, 1)] for l in ('distill', 'benign')}
(dn, df), (bn, bf) = tot['distill'], tot['benign']
print(f"TOTAL recall {df}/{dn} = {df / max(dn, 1):.3f}  FP {bf}/{bn} = {100 * bf / max(bn, 1):.2f} %")
for (l, st), (n, f, c, miss) in sorted(rows.items()):
    if l == 'benign' and f == 0:
        continue
    bad = (l == 'benign') or (n - f) * 3 > n or ('hydra' in st and f < n)
    ms = ' missed ' + ' '.join(f'{a}:{x:.2f}' for a, x in sorted(miss, key=lambda t: -t[1])[:6]) if miss else ''
    rules = ' '.join(f'{k}:{v}' for k, v in c.most_common())
    print(f"{l[:3]} {st:26s} {f:5d}/{n:<5d} [{rules}]{ms}{'  <--' if bad else ''}")
PY

# make NAME: the set NAME under $out/NAME (requests.jsonl.zst, labels.csv).
make() {
    local n="$1" d="$out/$1"
    evade() { nice "$ww" fixtures evade --in "$logs" --labels "$labels" --seed "$eseed" --out "$d" "$@" >/dev/null; }
    case "$n" in
    base) mkdir -p "$d"; [ -e "$d/labels.csv" ] || { ln -sf "$logs" "$d/requests.jsonl.zst"; cp "$labels" "$d/labels.csv"; } ;;
    benign | fewbenign)
        # benign: the attack accounts removed; fewbenign: a fifth of the
        # benign accounts kept (by sha256 of the id) beside every attack.
        mkdir -p "$d"
        python3 - "$labels" "$d" "$n" <<'PY'
import csv, hashlib, sys
rows = list(csv.DictReader(open(sys.argv[1])))
few = sys.argv[3] == 'fewbenign'
keep = lambda r: r['label'] == 'distill' if few else False
h = lambda a: int(hashlib.sha256(a.encode()).hexdigest()[:8], 16) / 2**32
out = [r for r in rows if keep(r) or (r['label'] == 'benign' and (not few or h(r['account_id']) < 0.2))]
ids = {r['account_id'] for r in out}
with open(sys.argv[2] + '/labels.csv', 'w', newline='') as fh:
    w = csv.DictWriter(fh, ['account_id', 'label', 'scenario']); w.writeheader(); w.writerows(out)
open(sys.argv[2] + '/drop.txt', 'w').write(''.join(f'"account_id":"{r["account_id"]}"\n' for r in rows if r['account_id'] not in ids))
PY
        zstdcat "$logs" | grep -F -v -f "$d/drop.txt" | zstd -q -T1 -o "$d/requests.jsonl.zst"
        rm "$d/drop.txt" ;;
    mpc0.5) evade --transform multi_turn,paraphrase,clients --share 0.5 ;;
    pef0.5) evade --transform params,endpoint,filler --share 0.5 ;;
    mc1) evade --transform multi_turn,clients --share 1 ;;
    all1) evade --transform multi_turn,paraphrase,filler,params,endpoint,clients --share 1 ;;
    p20p) evade --transform pacing,paraphrase --share 1 --per-day 20 ;;
    p20c) evade --transform pacing,clients --share 0.5 --per-day 20 ;;
    mix*) evade --transform mix --share "${n#mix}" ;;
    hostadopt*) evade --transform host --share "${n#hostadopt}" --adopt-clients ;;
    host*) evade --transform host --share "${n#host}" ;;
    redact1) evade --transform redact --share 1 ;;
    unlogged1) evade --transform unlogged --share 1 ;;
    *) echo "unknown set $n" >&2; return 1 ;;
    esac
}

for n in $sets; do
    make "$n"
    d="$out/$n"
    rm -f "$out/$n.eve.json"
    nice "$ww" analyze --no-progress --logs "$(ls "$d"/requests.jsonl*)" --labels "$d/labels.csv" \
        --no-replay --scores-out "$out/$n.scores.csv" --eve "$out/$n.eve.json" >"$out/$n.txt" 2>"$out/$n.err"
    cp "$d/labels.csv" "$out/$n.labels.csv"
    python3 "$summ" "$out/$n.labels.csv" "$out/$n.scores.csv" "$out/$n.eve.json" >"$out/$n.summ"
    echo "== $n"
    cat "$out/$n.summ"
    if [ "${KEEP:-0}" != 1 ] && [ "$n" != base ]; then rm -rf "$d"; fi
done
if [ "${KEEP:-0}" != 1 ] && [ "$mode" = gen ]; then rm -rf "$out/base"; fi
