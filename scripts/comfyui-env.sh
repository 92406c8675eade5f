#!/usr/bin/env bash
# Sets up a real ComfyUI for tests and benchmarks OUTSIDE the checkout (so a clean CI checkout reuses it):
#   $NODELOOM_COMFYUI_HOME (default ~/.cache/nodeloom/comfyui)
#     src-<archive sha256>/ComfyUI   the vendored source (tests/fixtures/comfyui), re-extracted when the archive changes
#     venv-<requirements hash>/      its virtualenv; complete only once it holds .nodeloom-complete
#     ComfyUI -> src-…/ComfyUI       the current pair, read by tests/support/comfyui.py
#     venv -> venv-…
# Idempotent and fast (well under a second) when all is in place; the first install takes minutes (torch).
# Older src-*/venv-* are pruned once a new pair is complete. ComfyUI is GPL-3.0: we run it over HTTP, never import it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ARCHIVE=${NODELOOM_COMFYUI_ARCHIVE:-$ROOT/tests/fixtures/comfyui/ComfyUI-0.3.64-a125cd84.tar.gz}
C=${NODELOOM_COMFYUI_HOME:-$HOME/.cache/nodeloom/comfyui}
PYTHON=${NODELOOM_COMFYUI_BASE_PYTHON:-python3}  # the interpreter the venv is made from (not the one that runs ComfyUI)
# torch comes from this machine's disk (see /etc/xdg/pip); torchaudio is left out (no SaveAudio/LoadAudio).
# ComfyUI imports requests without listing it.
EXTRA_PKGS=(torch==2.14.1 torchvision==0.29.1 requests)

[ -f "$ARCHIVE" ] || { echo "comfyui-env: archive not found: $ARCHIVE" >&2; exit 1; }
mkdir -p "$C"
C=$(cd "$C" && pwd)

# one setup at a time (two `make test` in parallel would otherwise race on the same venv)
exec 9>"$C/.lock"
flock 9

relink() {  # relink NAME TARGET: atomic switch of a symlink
  ln -sfn "$2" "$C/.$1.tmp" && mv -T "$C/.$1.tmp" "$C/$1"
}

# 1. the source, keyed by the archive's sha256
sha=$(sha256sum "$ARCHIVE" | cut -c1-16)
src="$C/src-$sha"
if [ ! -f "$src/ComfyUI/main.py" ]; then
  echo "comfyui-env: extracting $(basename "$ARCHIVE") → $src"
  rm -rf "$src" "$src.partial"
  mkdir -p "$src.partial"
  tar xzf "$ARCHIVE" -C "$src.partial"
  mv -T "$src.partial" "$src"
fi
relink ComfyUI "src-$sha/ComfyUI"

# 2. the venv, keyed by what goes into it: the filtered requirements, the extra pins and the Python version
req="$src/req.txt"
if [ ! -f "$req" ]; then
  grep -vE '^(torch|torchvision|torchaudio)\s*$' "$src/ComfyUI/requirements.txt" > "$req.partial"
  mv "$req.partial" "$req"
fi
pyver=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
key=$({ cat "$req"; echo "${EXTRA_PKGS[*]}"; echo "python $pyver"; } | sha256sum | cut -c1-16)
venv="$C/venv-$key"
if [ ! -f "$venv/.nodeloom-complete" ]; then
  echo "comfyui-env: installing ComfyUI's requirements into $venv (several minutes the first time)"
  start=$SECONDS
  rm -rf "$venv"   # an interrupted install is redone from scratch
  "$PYTHON" -m venv "$venv"
  # (this machine's pip.conf names local index folders that hold only some packages: pip warns for each other one)
  "$venv/bin/pip" install -q --disable-pip-version-check --progress-bar off "${EXTRA_PKGS[@]}" -r "$req" 2>&1 \
    | { grep -v "^WARNING: Location 'file://.*' is ignored" || true; }
  "$venv/bin/python" -c 'import torch, torchvision, aiohttp, requests'   # a broken install fails here, not in a test
  touch "$venv/.nodeloom-complete"
  echo "comfyui-env: installed in $((SECONDS - start)) s"
fi
relink venv "venv-$key"

# 3. prune what the current pair replaced
for old in "$C"/src-* "$C"/venv-*; do
  [ -e "$old" ] || continue
  case "$old" in "$src" | "$venv" | "$req") continue ;; esac
  echo "comfyui-env: removing stale $old"
  rm -rf "$old"
done

echo "NODELOOM_COMFYUI_HOME=$C"
echo "  source: $C/ComfyUI -> $src/ComfyUI"
echo "  python: $C/venv/bin/python -> $venv"
