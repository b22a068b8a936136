#!/usr/bin/env bash
# Refit the analyzer's bundled model (analyzer/src/model/default_model.json)
# the way the shipped one was fitted (docs/analyzer.md, "The model"):
#   ./scripts/fit-model.sh [OUT.json]
# Sets: the external labelled set (../shared/data/apilogs-external, when
# present) and the repository generator at seeds 1-3, 400 accounts x 3 days.
# The threshold is set on 5-fold (by account) out-of-fold benign scores,
# at most 1 % of each set's benign accounts.
# Prints each set in sample, the external set out of sample (split in
# halves by sha256 of the account id, both ways), both directions across
# generators (fitted on the generator only, the external set scored; and
# fitted on the external set only, the generator's seeds scored) and the
# leave-one-style-out table.
# WORK=DIR keeps the generated sets and the fitter's rows cache there, so a
# rerun (e.g. to compare options by hand) does not read the logs again.
# WW=BINARY uses that weightwatch build instead of building the debug one
# (an optimised build, `cargo build --profile perf -p weightwatch`, fits in
# minutes; the debug build takes about half an hour).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-analyzer/src/model/default_model.json}"
if [ -n "${WORK:-}" ]; then
    work="$WORK"
    mkdir -p "$work"
else
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
fi
if [ -n "${WW:-}" ]; then
    ww="$WW"
else
    cargo build --locked -p weightwatch
    ww=target/debug/weightwatch
fi
sets=()
ext=../shared/data/apilogs-external
if [ -f "$ext/requests.jsonl.zst" ]; then
    sets+=(--set "$ext/requests.jsonl.zst=$ext/labels.csv" --holdout apilogs-external/requests.jsonl.zst)
else
    echo "note: $ext absent: fitting on the generator only" >&2
fi
for seed in 1 2 3; do
    [ -f "$work/seed$seed/labels.csv" ] ||
        "$ww" fixtures logs --seed "$seed" --accounts 400 --days 3 --out "$work/seed$seed" >/dev/null
    sets+=(--set "$work/seed$seed/requests.jsonl=$work/seed$seed/labels.csv")
done
"$ww" model fit "${sets[@]}" --l2 10 --monotone false --modes 2 \
    --target-fpr 0.01 --threshold-folds 5 --per-set-threshold \
    --leave-one-out --rows-cache "$work/rows.json" --out "$work/model.json"
# Name the sets by what they are, not by temporary paths.
python3 - "$work/model.json" "$out" <<'PY'
import json, re, sys
m = json.load(open(sys.argv[1]))
m["fitted_on"] = re.sub(r"\S*seed(\d)/requests\.jsonl", r"generator seed \1 (400x3)", m["fitted_on"])
m["fitted_on"] = re.sub(r"\S*apilogs-external/requests\.jsonl\.zst", "external set (shared/data/apilogs-external)", m["fitted_on"])
json.dump(m, open(sys.argv[2], "w"), indent=1)
PY
echo "model written to $out" >&2
