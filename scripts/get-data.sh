#!/bin/sh
# Install Fashion-MNIST from Debian's package where the system can provide it (idempotent, non-fatal).
# Elsewhere greedyprune looks in $GREEDYPRUNE_DATA, then falls back to torchvision's download.
DIR=/usr/share/datasets/fashion-mnist
if [ -f "$DIR/train-images-idx3-ubyte.gz" ]; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "note: no apt-get here; Fashion-MNIST will be looked for in \$GREEDYPRUNE_DATA or downloaded by torchvision" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "note: not root and no sudo; install the Debian package dataset-fashion-mnist to get Fashion-MNIST offline" >&2
    exit 0
  fi
fi
echo "installing Fashion-MNIST (Debian package dataset-fashion-mnist, ~31 MB)..." >&2
($SUDO apt-get update -qq && $SUDO apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 \
  || echo "note: apt-get could not install dataset-fashion-mnist; greedyprune will try \$GREEDYPRUNE_DATA, then torchvision's download" >&2
exit 0
