#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine, then run it.
# Used by `.ci/run` and by developers: ./scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for tool in aapt apksigner dexdump readelf gcc openssl; do
  command -v "$tool" >/dev/null 2>&1 || need_apt+=("$tool")
done
# Channel monitoring: real F-Droid repositories (fdroidserver), APKs re-signed with test keys.
for tool in fdroid zipalign keytool; do
  command -v "$tool" >/dev/null 2>&1 || need_apt+=("$tool")
done
# A throwaway PostgreSQL server is started by the platform tests (initdb/pg_ctl).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
# The job tests start a throwaway Redis server (Celery broker) on a random port.
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# The S3 blob store tests run s3rver on Node.js (npm installs it below).
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
# Console and reports: headless Chromium for the browser tests, CJK fonts embedded in the PDFs,
# poppler (pdftoppm/pdftotext/pdffonts) to check them, Pango for WeasyPrint.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v pdftoppm >/dev/null 2>&1 || need_apt+=(poppler-utils)
fc-list 2>/dev/null | grep -q "Noto Sans CJK" || need_apt+=(fonts-noto-cjk)
ldconfig -p 2>/dev/null | grep -q libpangoft2-1.0 || need_apt+=(libpangoft2-1.0-0)
if [ ${#need_apt[@]} -gt 0 ]; then
  pkgs=()
  for t in "${need_apt[@]}"; do
    case "$t" in readelf) pkgs+=(binutils) ;; fdroid) pkgs+=(fdroidserver) ;; keytool) pkgs+=(default-jre-headless) ;; *) pkgs+=("$t") ;; esac
  done
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi

python3 -m pip install -q -e '.[test]' 2>&1 | grep -v -E '^(WARNING|\[notice\])' || true

# The official SARIF 2.1.0 JSON schema, from Microsoft's npm package (not vendored in the repo).
schema=.cache/sarif-schema-2.1.0.json
if [ ! -s "$schema" ]; then
  mkdir -p .cache/npm && (cd .cache/npm && npm pack --silent @microsoft/jest-sarif@1.0.0-beta.0 >/dev/null \
    && tar xzf microsoft-jest-sarif-1.0.0-beta.0.tgz package/lib/schemas/sarif-2.1.0-rtm.5.json \
    && cp package/lib/schemas/sarif-2.1.0-rtm.5.json "../sarif-schema-2.1.0.json")
fi

# A throwaway S3-compatible server for the S3 blob store tests: s3rver (Node), pinned, from npm.
if [ ! -x .cache/npm/node_modules/.bin/s3rver ]; then
  mkdir -p .cache/npm && npm install --prefix .cache/npm --silent --no-audit --no-fund --no-save s3rver@3.7.1 >/dev/null
fi

ruff check .
ruff format --check src tests benchmarks >/dev/null || { echo "ruff format: files need formatting"; ruff format --check src tests benchmarks; exit 1; }
export MEDRISK_SARIF_SCHEMA="$PWD/$schema"
exec python3 -m pytest -n 2 "$@"
