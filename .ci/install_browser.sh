#!/usr/bin/env bash
# Debian's Chromium drives the widget tests in a real browser (Playwright uses it directly;
# we never download a browser of Playwright's own). Installs it when missing and we are root.
set -u
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "installing Debian chromium for the browser tests..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "WARNING: could not install chromium; the browser tests will be skipped."
else
  echo "NOTE: /usr/bin/chromium not found; browser tests will be skipped. Install it with: sudo apt-get install chromium"
fi
exit 0
