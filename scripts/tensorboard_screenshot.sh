#!/usr/bin/env bash
# Redraws docs/images/tensorboard-scalars.png: trains Robult and GMC on the
# synthetic four-view data with --tensorboard, serves the logs and saves the
# scalars page (filtered on "loss") with headless Chromium. Lines are drawn
# as SVG (?forceSVG=true): headless Chromium has no WebGL here.
#   CHROMIUM=/path/to/chromium bash scripts/tensorboard_screenshot.sh
set -euo pipefail
CHROMIUM=${CHROMIUM:-chromium}
PYTHON=${PYTHON:-.venv/bin/python}
work=$(mktemp -d)
trap 'kill "${board:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
"$PYTHON" benchmarks/synthetic_views.py --out "$work/synthetic.npz"
"$PYTHON" -m keras_robult_cli train --data "$work/synthetic.npz" \
  --methods robult gmc --seeds 0 --tensorboard "$work/logs" \
  --out "$work/run" --quiet
python=$(command -v "$PYTHON")
python="$(cd "$(dirname "$python")" && pwd)/$(basename "$python")"
(cd "$work" && exec "$python" -m tensorboard.main --logdir logs \
  --port 6016 >tensorboard.log 2>&1) &
board=$!
for _ in $(seq 60); do
  curl -sf localhost:6016/data/runs >/dev/null && break
  sleep 1
done
"$CHROMIUM" --headless --no-sandbox --disable-gpu --window-size=1500,1400 \
  --virtual-time-budget=30000 --screenshot="$work/page.png" \
  "http://localhost:6016/?forceSVG=true#scalars&tagFilter=loss"
"$PYTHON" - "$work/page.png" <<'PY'
import sys

from PIL import Image

page = Image.open(sys.argv[1]).convert("RGB").crop((0, 0, 1500, 770))
page.quantize(colors=128).save(
    "docs/images/tensorboard-scalars.png", optimize=True
)
PY
echo "docs/images/tensorboard-scalars.png"
