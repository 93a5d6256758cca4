#!/usr/bin/env bash
# Debian tools some tests use to make their own media and render the HTML report:
# espeak-ng (speech), sox (tones), ffmpeg (video), chromium (headless rendering).
# Without arguments: lists the missing ones and how to install them; changes nothing.
# With --install: installs the missing ones with apt-get when this shell may (root on
# Debian/Ubuntu), saying so first. Either way, tests whose tool is missing skip with the reason.
set -uo pipefail
missing=()
for tool in espeak-ng sox ffmpeg chromium; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "${1:-}" != "--install" ]; then
  echo "note: ${missing[*]} not installed; the tests that need them will skip. To install them:" \
       "scripts/setup.sh --system-deps (runs apt-get as root), or apt-get install ${missing[*]}" >&2
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages ${missing[*]} with apt-get (as root)" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null) \
    || echo "warning: apt-get could not install ${missing[*]}; the tests that need them will skip" >&2
else
  echo "note: ${missing[*]} not installed (installing needs root and apt-get); the tests that need" \
       "them will skip" >&2
fi
exit 0
