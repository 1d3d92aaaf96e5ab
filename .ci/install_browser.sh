#!/usr/bin/env bash
# Debian's Chromium drives the widget tests in a real browser (Playwright uses it directly;
# we never download a browser of Playwright's own). Installs it when missing and we are root.
# On a laptop a missing browser only means the browser tests are skipped (each says why).
# In CI (CI=true) the browser tests must run: a missing browser, or a failed install, fails here.
set -u
ci=false
case "$(echo "${CI:-}" | tr '[:upper:]' '[:lower:]')" in 1|true|yes) ci=true ;; esac

fail_or_note() {   # $1: what is wrong
  if [ "$ci" = true ]; then
    echo "ERROR (CI=true): $1. The browser tests cannot run, so CI stops here." >&2
    exit 1
  fi
  echo "NOTE: $1; the browser tests will be skipped (each says why). Install it with: sudo apt-get install chromium"
  exit 0
}

if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "installing Debian chromium for the browser tests..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || fail_or_note "apt-get could not install chromium"
  [ -x /usr/bin/chromium ] || fail_or_note "chromium was installed but /usr/bin/chromium is missing"
  exit 0
fi
fail_or_note "/usr/bin/chromium not found and this user cannot install it (not root, or no apt-get)"
