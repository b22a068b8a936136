#!/usr/bin/env bash
# The whole analysis out of sample on the external set (docs/analyzer.md,
# "Protocol"): what `weightwatch analyze` flags, clusters included, in
# accounts whose labels the model never saw.
#   ./scripts/holdout-full.sh [WEIGHTWATCH_BINARY]
# The external set's accounts are split in halves by sha256 of the account
# id (the same split as `model fit --holdout`: lowest bit of the first 8
# bytes). For each half, a model is fitted as scripts/fit-model.sh fits the
# bundled one (same options) on the other half plus the generator at seeds
# 1-3 (400 x 3), the whole external log is analysed with it (so clusters and
# peer groups see every account, as in production) and only the held-out
# half's labels are scored. Prints each half's report and the two halves
# pooled. `scripts/fit-model.sh` measures the same halves at the account
# level only (cluster evidence left out).
# WORK=DIR keeps the generated sets, models and reports there.
set -euo pipefail
cd "$(dirname "$0")/.."
ext=../shared/data/apilogs-external
if [ ! -f "$ext/requests.jsonl.zst" ]; then
    echo "$ext absent: nothing to hold out" >&2
    exit 1
fi
if [ -n "${1:-}" ]; then
    ww="$1"
else
    cargo build --locked -p weightwatch
    ww=target/debug/weightwatch
fi
if [ -n "${WORK:-}" ]; then
    work="$WORK"
    mkdir -p "$work"
else
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
fi
# The halves' label files (the account hash is the one training.rs uses).
python3 - "$ext/labels.csv" "$work" <<'PY'
import csv, hashlib, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
for half, name in ((0, "A"), (1, "B")):
    with open(f"{sys.argv[2]}/labels{name}.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(rows[0])
        for r in rows[1:]:
            h = int.from_bytes(hashlib.sha256(r[0].encode()).digest()[:8], "big")
            if h & 1 == half:
                w.writerow(r)
PY
sets=()
for seed in 1 2 3; do
    [ -f "$work/seed$seed/labels.csv" ] ||
        "$ww" fixtures logs --seed "$seed" --accounts 400 --days 3 --out "$work/seed$seed" >/dev/null
    sets+=(--set "$work/seed$seed/requests.jsonl=$work/seed$seed/labels.csv")
done
for fit in A B; do
    held=$([ "$fit" = A ] && echo B || echo A)
    "$ww" model fit --quiet --set "$ext/requests.jsonl.zst=$work/labels$fit.csv" "${sets[@]}" \
        --l2 10 --monotone false --modes 2 --target-fpr 0.01 --threshold-folds 5 --per-set-threshold \
        --out "$work/model$fit.json" >"$work/fit$fit.txt"
    "$ww" analyze --quiet --no-progress --no-replay --logs "$ext/requests.jsonl.zst" \
        --model "$work/model$fit.json" --labels "$work/labels$held.csv" \
        --scores-out "$work/scores$held.csv" >"$work/report$held.txt"
    echo "== half $held, scored by a model fitted on half $fit + seeds 1-3 ($(grep -m1 '^threshold' "$work/fit$fit.txt" | cut -d' ' -f1-2))"
    cat "$work/report$held.txt"
done
# Both halves pooled: every external account scored out of sample once.
python3 - "$ext/labels.csv" "$work/scoresA.csv" "$work/scoresB.csv" "$work/labelsA.csv" "$work/labelsB.csv" <<'PY'
import csv, sys
from collections import Counter
label = {r["account_id"]: r for r in csv.DictReader(open(sys.argv[1], newline=""))}
tp = fp = pos = neg = 0
missed, false_pos = Counter(), Counter()
for scores, labels in ((sys.argv[2], sys.argv[4]), (sys.argv[3], sys.argv[5])):
    held = {r["account_id"] for r in csv.DictReader(open(labels, newline=""))}
    for r in csv.DictReader(open(scores, newline="")):
        a = r["account_id"]
        if a not in held:
            continue
        flagged = r["flagged"] == "true"
        if label[a]["label"] == "distill":
            pos += 1
            tp += flagged
            if not flagged:
                missed[label[a]["scenario"]] += 1
        else:
            neg += 1
            fp += flagged
            if flagged:
                false_pos[label[a]["scenario"]] += 1
print(f"== pooled, out of sample: recall {tp / pos:.3f} ({tp} of {pos})  "
      f"false-positive rate {fp / neg:.4f} ({fp} of {neg})")
print("missed:", dict(sorted(missed.items())) or "none")
print("false positives:", dict(sorted(false_pos.items())) or "none")
PY
