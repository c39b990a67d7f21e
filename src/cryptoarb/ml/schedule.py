"""The weekly retrain on APScheduler: Sunday 02:00 UTC by default (``[ml] retrain_cron``,
crontab syntax). ``arb retrain --schedule`` runs it in the foreground (the analytics role);
``[ml] retrain_in_run = true`` runs it in a background thread of ``arb run``. For cron instead,
docs/ml.md gives the crontab line."""

from __future__ import annotations

import logging
from typing import Any

from cryptoarb.config_check import ConfigError

log = logging.getLogger(__name__)


def trigger(cron: str) -> Any:
    from apscheduler.triggers.cron import CronTrigger

    try:
        return CronTrigger.from_crontab(cron, timezone="UTC")
    except ValueError as e:
        raise ConfigError(f"ml.retrain_cron {cron!r}: {e}") from None


def _job(settings: Any) -> None:
    from cryptoarb.ml.pipeline import scheduled_retrain

    try:
        out = scheduled_retrain(settings)
        log.info("scheduled retrain: model %s registered; %s", out.model.sha256[:12],
                 out.shadow.note if out.shadow else "no shadow test")
    except Exception as e:  # the next week's run must still happen
        log.error("scheduled retrain failed: %s: %s", type(e).__name__, e)


def background(settings: Any) -> Any:
    """A started BackgroundScheduler with the weekly job (``arb run``); call ``.shutdown()``."""
    from apscheduler.schedulers.background import BackgroundScheduler

    sched = BackgroundScheduler(timezone="UTC")
    sched.add_job(_job, trigger(settings.ml.retrain_cron), args=[settings], id="weekly-retrain",
                  max_instances=1, coalesce=True)
    sched.start()
    return sched


def blocking(settings: Any) -> None:
    """Run the schedule in the foreground until Ctrl-C (the analytics role)."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    sched = BlockingScheduler(timezone="UTC")
    sched.add_job(_job, trigger(settings.ml.retrain_cron), args=[settings], id="weekly-retrain",
                  max_instances=1, coalesce=True)
    sched.start()
