"""The live model's score for the detector, computed off the hot path.

The engine's FeatureLogger hands every spread sample to :meth:`ModelScorer.submit` (engine
thread, at the sampling interval: a deque append and a queue put). A daemon thread turns each
group's latest window into model inputs, runs the model, and writes the survival probability into
``scores[group]``; the detector reads that dict (one lookup) when a cross is found. A score older
than ``max_age`` is dropped from the dict at the next sample, so the detector falls back to
trading as without a model rather than on a stale view. The thread also polls the registry
(when given a database) and swaps in a new live model after verifying its hash.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cryptoarb.engine.latency import LatencyRecorder
from cryptoarb.ml.dataset import step_features

log = logging.getLogger(__name__)

_STOP = object()
_SHADOW = object()  # queue marker: run the live-stream shadow test on the samples that follow it


class ModelScorer:
    def __init__(self, model: Any, version: str, max_age_ns: int,
                 fetch_live: Callable[[], tuple[str, Any] | None] | None = None,
                 poll_s: float = 30.0) -> None:
        self.model = model
        self.version = version
        self.max_age_ns = max_age_ns
        self.scores: dict[str, float] = {}  # group -> survival probability (read by the detector)
        self.latest: dict[str, tuple[int, float, float]] = {}  # group -> (ts_ns, predicted bps, p)
        self.latency = LatencyRecorder()  # per score, wall ns on the scoring thread
        self.scored = 0
        self.errors = 0
        self._hist: dict[str, deque[tuple[float, float, float, float, float, int]]] = {}
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._fetch_live = fetch_live
        self._poll_s = poll_s
        #: the live-stream shadow test (see :meth:`shadow_on_live`): samples kept until it runs
        self._shadow: Callable[[Any], Any] | None = None
        self._shadow_need = 0
        self._shadow_rows: list[dict[str, Any]] = []
        self.shadow_result: Any = None
        self._thread = threading.Thread(target=self._loop, name="model-scorer", daemon=True)
        self._thread.start()

    def shadow_on_live(self, run: Callable[[Any], Any], samples_needed: int) -> None:
        """Keep the live stream's samples; once ``samples_needed`` are in, call ``run(series)``
        on the scoring thread (it scores the candidate and the live model on the same steps,
        stores both, and promotes or rejects: :func:`cryptoarb.ml.shadow.shadow_test`)."""
        self._shadow = run
        self._shadow_need = samples_needed

    # -- engine thread -------------------------------------------------------------------
    def submit(self, sample: dict[str, Any]) -> None:
        if self._shadow is not None:
            self._shadow_rows.append(sample)
            if len(self._shadow_rows) >= self._shadow_need:
                rows, self._shadow_rows = self._shadow_rows, []
                self._q.put((_SHADOW, rows))
        g = sample["group"]
        h = self._hist.get(g)
        if h is None:
            h = self._hist[g] = deque(maxlen=self.model.window)
        ts = sample["ts_ns"]
        h.append((sample["spread_bps"], sample["mid"], sample["imbalance"], sample["depth_quote"],
                  sample["book_spread_bps"], ts))
        if len(h) == h.maxlen:
            self._q.put((g, tuple(h)))
        old = ts - self.max_age_ns
        for group, (t, _, _) in list(self.latest.items()):
            if t < old:
                self.scores.pop(group, None)

    def close(self, timeout: float = 5.0) -> None:
        self._q.put(_STOP)
        self._thread.join(timeout)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every submitted window is scored (tests, benchmarks)."""
        done = threading.Event()
        self._q.put(done)
        done.wait(timeout)

    # -- scoring thread -----------------------------------------------------------------
    def _loop(self) -> None:
        next_poll = time.monotonic() + self._poll_s
        while True:
            try:
                item = self._q.get(timeout=max(0.01, next_poll - time.monotonic()))
            except queue.Empty:
                item = None
            if item is _STOP:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            if self._fetch_live is not None and time.monotonic() >= next_poll:
                next_poll = time.monotonic() + self._poll_s
                self._poll()
            if item is None:
                continue
            if item[0] is _SHADOW:
                self._run_shadow(item[1])
                continue
            try:
                self._score(*item)
            except Exception:
                self.errors += 1
                if self.errors == 1:
                    log.exception("model scorer: scoring failed (further failures are counted)")

    def _score(self, group: str, window: tuple[tuple[float, ...], ...]) -> None:
        t0 = time.perf_counter_ns()
        a = np.asarray(window, np.float64)
        m = self.model
        if len(a) != m.window:
            return  # the window of a model swapped in meanwhile
        x = step_features(a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4]).astype(np.float32)[None]
        pred, prob = m.predict(x, a[-1:, 0])
        ts = int(a[-1, 5])
        p = float(prob[0])
        self.latest[group] = (ts, float(pred[0]), p)
        self.scores[group] = p
        self.scored += 1
        self.latency.append(time.perf_counter_ns() - t0)

    def _run_shadow(self, rows: list[dict[str, Any]]) -> None:
        from cryptoarb.ml.dataset import from_columns

        run, self._shadow = self._shadow, None
        if run is None:
            return
        cols = {k: [r[k] for r in rows] for k in ("ts_ns", "group", "spread_bps", "mid", "imbalance",
                                                  "depth_quote", "book_spread_bps")}
        try:
            self.shadow_result = run(from_columns(cols, "live stream"))
            log.info("live shadow test: %s", self.shadow_result.note)
        except Exception as e:  # reported, never fatal to the run
            self.shadow_result = e
            log.error("live shadow test failed: %s: %s", type(e).__name__, e)
        if self._fetch_live is not None:
            self._poll()  # a promoted candidate scores from now on

    def _poll(self) -> None:
        assert self._fetch_live is not None
        try:
            found = self._fetch_live()
        except Exception as e:  # a corrupt archive or a database hiccup: keep the model we have
            log.warning("model scorer: live model not reloaded: %s", e)
            return
        if found is not None and found[0] != self.version:
            log.info("model scorer: live model %s -> %s", self.version[:12], found[0][:12])
            self.version, self.model = found
            self._hist.clear()


def attach(engine: Any, settings: Any, db: Any | None) -> ModelScorer | None:
    """Score with the registry's live model in ``engine`` when ``[ml] use`` asks for it; None
    (and a warning in the log) when there is no live model yet. Raises RegistryError for a
    live model whose archive does not verify."""
    ml = settings.ml
    if ml.use == "off" or db is None:
        return None
    from sqlalchemy.orm import Session

    from cryptoarb.ml import registry as R

    def fetch() -> tuple[str, Any] | None:
        with Session(db) as s:
            info = R.live_model(s)
        if info is None:
            return None
        return info.sha256, R.load_verified(Path(ml.models_dir), info)

    found = fetch()
    if found is None:
        log.warning("ml.use = %s but the registry has no live model: trading without one", ml.use)
        return None
    cand = None
    if ml.shadow_candidate:
        with Session(db) as s:
            cand = R.get_model(s, ml.shadow_candidate)  # an unknown version stops the start
        R.load_verified(Path(ml.models_dir), cand)
    scorer = ModelScorer(found[1], found[0], int(ml.score_max_age_ms * 1e6), fetch_live=fetch)
    if cand is not None:
        n_groups = max(1, sum(1 for g in engine.plan.groups if len(g.members) >= 2))
        schema = cand.feature_schema or {}
        need = n_groups * (ml.shadow_window + int(schema.get("window", 32)) + int(schema.get("horizon", 5)))

        def run(series: Any) -> Any:
            from cryptoarb.ml.shadow import shadow_test

            with Session(db) as s:
                return shadow_test(s, Path(ml.models_dir), cand.sha256, series, ml.shadow_metric, ml.shadow_window,
                                   actor="shadow-live")

        scorer.shadow_on_live(run, need)
    engine.use_scores(scorer.scores, scorer.submit, ml.use, ml.min_survival)
    return scorer


def start_in_run(engine: Any, settings: Any, sink: Any | None) -> Callable[[], None]:
    """What ``arb run`` / ``arb replay`` start beside the engine: the scorer (``[ml] use``) and,
    with ``[ml] retrain_in_run``, the weekly retrain. Returns the function that stops both. A
    live model whose archive fails verification is a one-line error before the run starts."""
    from cryptoarb.config_check import ConfigError
    from cryptoarb.ml.registry import RegistryError

    db = getattr(sink, "engine", None)
    if db is None and settings.ml.use != "off":
        raise ConfigError(f"ml.use = {settings.ml.use} reads the live model from the database's registry; "
                          "it cannot run with --no-store (or set ml.use = \"off\")")
    try:
        scorer = attach(engine, settings, db)
    except RegistryError as e:
        raise ConfigError(f"ml.use = {settings.ml.use}: {e}") from None
    sched = None
    stop_alerts: Callable[[], None] | None = None
    if settings.ml.retrain_in_run or (scorer is not None and settings.ml.shadow_candidate):
        from cryptoarb.ml.alerts import start as start_alerts

        stop_alerts = start_alerts(settings, f"run {engine.run_id}")  # promotions during the run
    if settings.ml.retrain_in_run:
        from cryptoarb.ml.schedule import background

        sched = background(settings)

    def stop() -> None:
        if scorer is not None:
            scorer.close()
        if sched is not None:
            sched.shutdown(wait=False)
        if stop_alerts is not None:
            stop_alerts()

    return stop
