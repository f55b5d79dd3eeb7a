"""A results folder that remembers which (method, seed) pairs are done,
so that an interrupted run resumes where it stopped."""

import contextlib
import json
import os
import re
import shutil

from keras_robult.utils.atomic import write_json

CONFIG_FILE = "run_config.json"
LOCK_FILE = ".lock"
# Options that choose which pairs a run reports rather than how a pair is
# trained: a rerun with other methods adds its new ones to the folder.
SELECTION = ("methods",)


def _slug(name):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name))


class RunStore:
    """The finished (method, seed) pairs of a run in `out_dir`.

    Each finished pair is one JSON record under `out_dir/runs/` (written
    atomically, after its model), so a run that is killed at any moment
    loses at most the pair it was training. The run's configuration is
    saved in `out_dir/run_config.json`; opening the folder with another
    configuration is refused, naming the options that differ. The methods
    are a selection, not a configuration (each pair trains on its own):
    opening the folder with other methods keeps the finished pairs, trains
    only the new methods, and the saved `methods` lists every method the
    folder has seen.

    Args:
        out_dir: the results folder.
        config: dict of the options that determine the results (JSON
            values).
        restart: bool, forget every finished pair (and the saved
            configuration) and start over.
    """

    def __init__(self, out_dir, config, restart=False):
        self.out_dir = os.path.abspath(out_dir)
        self.config = json.loads(json.dumps(config))
        self.runs_dir = os.path.join(self.out_dir, "runs")
        self.backups_dir = os.path.join(self.out_dir, "backups")
        config_path = os.path.join(self.out_dir, CONFIG_FILE)
        if restart:
            for folder in (self.runs_dir, self.backups_dir):
                shutil.rmtree(folder, ignore_errors=True)
            if os.path.exists(config_path):
                os.remove(config_path)
        if os.path.exists(config_path):
            with open(config_path) as handle:
                saved = json.load(handle)
            differing = [
                key
                for key in sorted(set(saved) | set(self.config))
                if key not in SELECTION
                and saved.get(key) != self.config.get(key)
            ]
            if differing:
                details = "; ".join(
                    f"{key}: {saved.get(key)!r} there, "
                    f"{self.config.get(key)!r} now"
                    for key in differing
                )
                raise ValueError(
                    f"{self.out_dir} holds a run with other options "
                    f"({details}). Resume with the same options, choose "
                    "another `out`, or pass `restart` to start over."
                )
            for key in SELECTION:
                if key in saved and key in self.config:
                    union = list(saved[key])
                    union += [v for v in self.config[key] if v not in union]
                    if union != saved[key]:
                        write_json(config_path, dict(saved, **{key: union}))
        self._config_path = None if os.path.exists(config_path) else config_path

    def _claim(self):
        """Writes the run's configuration when its first pair starts
        training or finishes: a run refused before that (a split check,
        bad options) leaves the folder free for other options."""
        if self._config_path is not None:
            write_json(self._config_path, self.config)
            self._config_path = None
        os.makedirs(self.runs_dir, exist_ok=True)

    def _record_path(self, method, seed):
        return os.path.join(
            self.runs_dir, f"{_slug(method)}-seed{int(seed)}.json"
        )

    def finished(self, method, seed):
        """The saved record of a finished pair, or None."""
        path = self._record_path(method, seed)
        if not os.path.exists(path):
            return None
        with open(path) as handle:
            return json.load(handle)

    def save(self, method, seed, record):
        """Marks a pair finished with its `record` (JSON values)."""
        self._claim()
        write_json(self._record_path(method, seed), record)
        shutil.rmtree(self.backup_dir(method, seed), ignore_errors=True)

    def backup_dir(self, method, seed):
        """Where a `TrainingBackup` keeps the pair's training state at its
        last finished epoch while it trains (removed once it is saved)."""
        self._claim()
        return os.path.join(
            self.backups_dir, f"{_slug(method)}-seed{int(seed)}"
        )


@contextlib.contextmanager
def run_lock(out_dir):
    """Holds `out_dir` for one run: a second run on the same folder (which
    would interleave its pairs and backups with this one's) is refused,
    naming the process that holds it. An advisory `flock` on
    `out_dir/.lock`, released when the run ends or its process dies;
    where the system has no `flock` (Windows), no lock."""
    try:
        import fcntl  # POSIX only
    except ImportError:
        yield
        return
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, LOCK_FILE)
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise ValueError(
                f"{os.path.abspath(out_dir)} is in use by another run "
                f"(process {holder}); wait for it to end, or choose another "
                "`out`."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()
