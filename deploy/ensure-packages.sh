#!/usr/bin/env bash
# Install the Debian packages this project runs, when missing: postgresql (the servers every
# stack and test starts), and with --all the test tools (promtool, nginx, wrk, chromium).
set -euo pipefail

have_pg_server() {
  command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

need=()
command -v make >/dev/null 2>&1 || need+=(make)
have_pg_server || need+=(postgresql postgresql-contrib)
if [ "${1:-}" = "--all" ]; then
  command -v promtool >/dev/null 2>&1 || need+=(prometheus)
  command -v nginx >/dev/null 2>&1 || need+=(nginx)
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
  [ -x /usr/bin/chromium ] || need+=(chromium chromium-driver)
fi
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ]; then sudo=(); elif command -v sudo >/dev/null 2>&1; then sudo=(sudo); else
  echo "missing Debian packages: ${need[*]} (install them as root: apt-get install ${need[*]})" >&2
  exit 1
fi
echo "installing Debian packages: ${need[*]}"
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
# The packages start services of their own; the project starts its own servers on free ports.
if command -v pg_lsclusters >/dev/null 2>&1; then
  pg_lsclusters -h | while read -r ver name _; do
    "${sudo[@]}" pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true
  done
fi
for service in prometheus nginx; do
  pkill -x "$service" 2>/dev/null || true
done
