#!/usr/bin/env bash
# Installs keras_robult with every backend into a virtual environment, lints,
# builds the documentation site, and runs the whole test suite once per Keras backend. Fails if any fails.
#   bash scripts/test.sh               # fast suite
#   bash scripts/test.sh --run-large   # plus the slow tests
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0+cpu}   # the CPU wheel, not CUDA
PY=${PYTHON:-python3}

if [[ ! -x "$VENV/bin/python" ]]; then
  "$PY" -m venv "$VENV" || exit 1
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip >/dev/null
"$VENV/bin/python" -m pip install --quiet "$TORCH_SPEC" -e ".[jax,torch,dev,docs,tune]" \
  || { echo "install failed"; exit 1; }

echo "== ruff"
"$VENV/bin/ruff" check . || exit 1
"$VENV/bin/ruff" format --check keras_robult keras_robult_cli tests \
  benchmarks recipes scripts docs/hooks || exit 1
echo "== lint-imports (the package's floors: pyproject.toml)"
"$VENV/bin/lint-imports" || exit 1

export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
echo "== mkdocs build --strict (the documentation site)"
SITE_DIR=${SITE_DIR:-site}
# Not --quiet: it hides the warnings that --strict counts, and a build
# with a warning then passed.
NO_MKDOCS_2_WARNING=1 "$VENV/bin/mkdocs" build --strict \
  --site-dir "$SITE_DIR" || exit 1
# tests/test_docs.py reads this build instead of building the site again
# under each backend.
export ROBULT_BUILT_SITE="$(cd "$SITE_DIR" && pwd)"
# Tests run in parallel (pytest-xdist): most of a test's time is one-threaded
# XLA compilation. PYTEST_WORKERS=0 runs them in this process.
WORKERS=${PYTEST_WORKERS:-2}
status=0
for backend in tensorflow jax torch; do
  echo "== pytest, KERAS_BACKEND=$backend"
  # Torch's OpenMP threads spin while they wait: two workers with a
  # thread per core each ran the torch suite at half speed. One thread
  # per worker (and per process a test starts); the TensorFlow and JAX
  # suites ran no faster with one thread a worker.
  threads=()
  if [[ $backend == torch && -z ${OMP_NUM_THREADS:-} && $WORKERS != 0 ]]; then
    threads=(OMP_NUM_THREADS=1)
  fi
  env "${threads[@]}" KERAS_BACKEND=$backend \
    "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
    -n "$WORKERS" --durations=15 "$@"
  code=$?
  if [[ $code -eq 5 ]]; then
    echo "pytest collected no test under $backend: treated as a failure"
    status=1
  elif [[ $code -ne 0 ]]; then
    echo "tests failed under $backend (exit $code)"
    status=1
  fi
done
exit $status
