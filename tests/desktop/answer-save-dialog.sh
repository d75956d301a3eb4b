#!/usr/bin/env bash
# Usage: answer-save-dialog.sh TITLE PATH
# Waits (up to 30 s) for a visible GTK file chooser whose title matches TITLE, types
# PATH into its name field and presses Return; answers GTK's "Replace?" question with
# Replace. Bare Xvfb has no window manager: focus with windowfocus, not windowactivate.
set -euo pipefail
title="$1"; target="$2"
visible() { xdotool search --onlyvisible --name "${1:-.*}" 2>/dev/null || true; }
win=""
for _ in $(seq 300); do
  win=$(visible "$title" | head -n1)
  [[ -n "$win" ]] && break
  sleep 0.1
done
[[ -n "$win" ]] || { echo "answer-save-dialog: no window titled \"$title\" appeared" >&2; exit 124; }
sleep 0.3
xdotool windowfocus --sync "$win"
xdotool key --clearmodifiers ctrl+a
xdotool type --delay 5 --clearmodifiers -- "$target"
before=$(visible | sort)
xdotool key --clearmodifiers Return
for _ in $(seq 20); do
  new=$(comm -13 <(echo "$before") <(visible | sort) | head -n1)
  if [[ -n "$new" ]]; then
    sleep 0.2; xdotool windowfocus --sync "$new"; xdotool key --clearmodifiers alt+r
    break
  fi
  xdotool search --onlyvisible --name "$title" >/dev/null 2>&1 || break
  sleep 0.1
done
