#!/usr/bin/env bash
# Debian tools some tests use to make their own media and render the HTML report:
# espeak-ng (speech), sox (tones), ffmpeg (video), chromium (headless rendering).
# Installed when missing and this shell may use apt-get (root on Debian/Ubuntu); otherwise the
# tests that need them skip, each with its reason.
set -uo pipefail
missing=()
for tool in espeak-ng sox ffmpeg chromium; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} with apt-get" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null) \
    || echo "warning: apt-get could not install ${missing[*]}; the tests that need them will skip" >&2
else
  echo "note: ${missing[*]} not installed (needs root and apt-get); the tests that need them will skip" >&2
fi
exit 0
