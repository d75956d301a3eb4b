#!/usr/bin/env bash
# Usage: with-desktop-session.sh CMD [ARGS...]
# Runs CMD inside one throwaway desktop session, the parts a real one has:
#   * Xvfb on a free display (-displayfd: no fixed :99, no start-up race)    -> DISPLAY
#   * a private D-Bus session bus (dbus-run-session)                          -> DBUS_SESSION_BUS_ADDRESS
#   * GNOME Keyring's Secret Service, its "login" collection created unlocked
#   * dunst, a real org.freedesktop.Notifications server, and a dbus-monitor
#     log of every Notify call                                                -> NOTIFY_LOG
# HOME and XDG_RUNTIME_DIR are fresh folders under SESSION_TMP; everything is torn
# down on exit. Exit code: CMD's.
set -euo pipefail
if [[ -z "${_REPAIROPS_SESSION_INNER:-}" ]]; then
  export _REPAIROPS_SESSION_INNER=1
  tmp=$(mktemp -d -t repairops-desktop.XXXXXX)
  export SESSION_TMP="$tmp" HOME="$tmp/home" XDG_RUNTIME_DIR="$tmp/run"
  mkdir -p "$HOME" "$XDG_RUNTIME_DIR"; chmod 700 "$XDG_RUNTIME_DIR"
  exec 3> "$tmp/display"
  Xvfb -displayfd 3 -screen 0 1280x860x24 -nolisten tcp >"$tmp/xvfb.log" 2>&1 &
  xvfb_pid=$!
  exec 3>&-
  for _ in $(seq 200); do [[ -s "$tmp/display" ]] && break; sleep 0.05; done
  [[ -s "$tmp/display" ]] || { echo "Xvfb did not start" >&2; cat "$tmp/xvfb.log" >&2; exit 1; }
  export DISPLAY=":$(head -n1 "$tmp/display")"
  rc=0
  dbus-run-session -- "$0" "$@" 2> >(grep -v -e 'Failed to set fd limit' >&2) || rc=$?
  kill "$xvfb_pid" 2>/dev/null || true; wait "$xvfb_pid" 2>/dev/null || true
  [[ -n "${KEEP_TMP:-}" ]] || rm -rf "$tmp"
  exit $rc
fi
# ---- inside the private session bus ----
name_owned() {
  dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner "string:$1" 2>/dev/null | grep -q 'boolean true'
}
export NO_AT_BRIDGE=1 GDK_BACKEND=x11
export NOTIFY_LOG="$SESSION_TMP/notify-monitor.log"
dbus-monitor --session "type='method_call',interface='org.freedesktop.Notifications'" \
  >"$NOTIFY_LOG" 2>"$SESSION_TMP/dbus-monitor.err" &
mon_pid=$!
# --unlock reads the password from standard input and creates an unlocked "login"
# collection; without it every write fails with NoStorageAccess.
eval "$(printf '%s' "desktop-test" | gnome-keyring-daemon --unlock --components=secrets --daemonize)"
export GNOME_KEYRING_CONTROL
dunst -conf /etc/xdg/dunst/dunstrc >"$SESSION_TMP/dunst.log" 2>&1 &
dunst_pid=$!
for _ in $(seq 200); do
  name_owned org.freedesktop.secrets && name_owned org.freedesktop.Notifications \
    && [[ -s "$NOTIFY_LOG" ]] && break
  sleep 0.05
done
name_owned org.freedesktop.secrets || { echo "gnome-keyring is not on the session bus" >&2; exit 1; }
name_owned org.freedesktop.Notifications || { echo "dunst is not on the session bus" >&2; cat "$SESSION_TMP/dunst.log" >&2; exit 1; }
rc=0
"$@" || rc=$?
kill "$dunst_pid" "$mon_pid" 2>/dev/null || true
wait "$dunst_pid" "$mon_pid" 2>/dev/null || true
exit $rc
