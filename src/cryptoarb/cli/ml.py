"""``arb features export``, ``arb retrain``, ``arb model list|show|swap|shadow`` (docs/ml.md).

PyTorch is imported inside the commands that train or load a model, never at import time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cryptoarb.cli.common import ConfigOpt, DbOpt, _settings, app, check_output_file, console, err, fail, finish

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from cryptoarb.config import Settings

features_app = typer.Typer(no_args_is_help=True, help="Training features stored by the engine.")
model_app = typer.Typer(no_args_is_help=True, help="The model registry: list, show, swap, shadow-test.")
app.add_typer(features_app, name="features")
app.add_typer(model_app, name="model")

ModelsDirOpt = Annotated[Path | None, typer.Option("--models-dir", help="Archive root (default ml.models_dir)")]
SinceOpt = Annotated[str | None, typer.Option("--since", help="From this time (ISO, UTC; or ns)")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Before this time (ISO, UTC; or ns)")]
GroupOpt = Annotated[str | None, typer.Option("--group", help="Only this detector group")]


def _open(config: Path | None, db: str | None) -> tuple[Settings, Engine]:
    from cryptoarb.storage.db import connect

    settings = _settings(config, db, False)
    return settings, connect(settings.storage.url)


def _range(since: str | None, until: str | None) -> tuple[int | None, int | None]:
    from cryptoarb.ml.dataset import DatasetError
    from cryptoarb.ml.export import parse_time

    try:
        a = parse_time(since, "--since") if since else None
        b = parse_time(until, "--until") if until else None
    except DatasetError as e:
        fail(str(e))
    if a is not None and b is not None and a >= b:
        fail("--since must be before --until")
    return a, b


def _models_dir(settings: Settings, models_dir: Path | None) -> str:
    return str(models_dir) if models_dir is not None else settings.ml.models_dir


@features_app.command("export")
def features_export(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file")],
    fmt: Annotated[str, typer.Option("--format", help="csv, parquet or npz")] = "csv",
    table: Annotated[str, typer.Option("--table", help="series (spread samples) or opportunities")] = "series",
    since: SinceOpt = None,
    until: UntilOpt = None,
    group: GroupOpt = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Export stored features. Exit 3 when the range holds no row."""
    from cryptoarb.ml.export import FORMATS, TABLES, opportunity_columns, series_columns, write

    if fmt not in FORMATS:
        fail(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    if table not in TABLES:
        fail(f"--table {table!r}: use one of {', '.join(TABLES)}")
    check_output_file(out, "--out")
    a, b = _range(since, until)
    _, engine = _open(config, db)
    try:
        cols = (series_columns if table == "series" else opportunity_columns)(engine, a, b, group)
    finally:
        engine.dispose()
    if not cols or not next(iter(cols.values())):
        finish(nothing=f"no {table} rows in that range; nothing written")
    n = write(cols, out, fmt)
    err.print(f"[dim]wrote {n:,} {table} rows ({len(cols)} columns) to {out}[/]", highlight=False)


@app.command()
def retrain(
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Training epochs")] = 10,
    from_file: Annotated[Path | None, typer.Option("--from", help="Series file (csv/parquet/npz), not the DB")] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    group: GroupOpt = None,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu or cuda (default ml.device)")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 7,
    window: Annotated[int, typer.Option("--window", min=2, help="Samples per model input")] = 32,
    horizon: Annotated[int, typer.Option("--horizon", min=1, help="Steps ahead to predict")] = 5,
    hidden: Annotated[int, typer.Option("--hidden", min=1, help="LSTM width")] = 32,
    edge_bps: Annotated[float | None, typer.Option("--edge-bps", help="Cost of a trade (default: the "
                                                   "90th percentile of the training spreads)")] = None,
    shadow: Annotated[bool, typer.Option("--shadow", help="Shadow-test on the held-back range")] = False,
    schedule: Annotated[bool, typer.Option("--schedule", help="Run the weekly schedule in the foreground")] = False,
    models_dir: ModelsDirOpt = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the metrics here")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Train a SpreadLSTM, archive it by SHA256, record it in the registry, report its metrics."""
    settings, engine = _open(config, db)
    if schedule:
        from cryptoarb.ml.schedule import blocking, trigger

        trigger(settings.ml.retrain_cron)  # a bad cron line is a one-line error now
        err.print(f"[dim]weekly retrain scheduled ({settings.ml.retrain_cron}, UTC); Ctrl-C stops[/]")
        blocking(settings)
        return
    from cryptoarb.ml.dataset import DatasetError, load
    from cryptoarb.ml.export import load_series
    from cryptoarb.ml.model import ModelError
    from cryptoarb.ml.pipeline import retrain as run_retrain
    from cryptoarb.ml.registry import RegistryError
    from cryptoarb.ml.train import TrainConfig

    if json_out is not None:
        check_output_file(json_out, "--json")
    a, b = _range(since, until)
    cfg = TrainConfig(epochs=epochs, window=window, horizon=horizon, hidden=hidden, seed=seed, edge_bps=edge_bps,
                      device=device or settings.ml.device)
    try:
        series = load(from_file) if from_file is not None else load_series(engine, a, b, group)
        epoch_text = "epoch {task.completed}/{task.total} · loss {task.fields[tl]} · val {task.fields[vl]}"
        with Progress(TextColumn("[bold]train"), BarColumn(), TaskProgressColumn(), TextColumn(epoch_text),
                      TimeElapsedColumn(), console=err, transient=False) as progress:
            task = progress.add_task("train", total=epochs, tl="-", vl="-")

            def on_epoch(e: int, tl: float, vl: float) -> None:
                progress.update(task, completed=e, tl=f"{tl:.4f}", vl=f"{vl:.4f}")

            from cryptoarb.ml.alerts import alerting

            with alerting(settings, "arb retrain"):  # a shadow test may promote: that is a swap
                out = run_retrain(engine, _models_dir(settings, models_dir), series, cfg,
                                  f"arb retrain ({'file ' + str(from_file) if from_file else 'stored samples'})",
                                  settings.ml.shadow_metric if shadow else None, settings.ml.shadow_window,
                                  on_epoch)
    except (DatasetError, ModelError, RegistryError) as e:
        fail(str(e))
    finally:
        engine.dispose()
    m = out.result.metrics
    _print_metrics(out.model.sha256, m)
    if out.shadow is not None:
        console.print(f"shadow test {out.shadow.test_id}: {out.shadow.note}", highlight=False)
    if json_out is not None:
        json_out.write_text(json.dumps({"sha256": out.model.sha256, "metrics": m,
                                        "shadow": out.shadow.__dict__ if out.shadow else None}, indent=2))


def _print_metrics(sha: str, m: dict[str, Any]) -> None:
    def f(v: Any) -> str:
        return "n/a" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)

    r, s, rule = m["rmse"], m["survival"], m["rule"]
    t = Table(title=f"model {sha[:12]} · validation {m['val_windows']:,} windows (trained on {m['train_windows']:,})")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("validation loss", f(m["val_loss"]))
    t.add_row("RMSE model / persistence / linear (bps)", f"{f(r['model'])} / {f(r['persistence'])} / {f(r['linear'])}")
    t.add_row(f"survival AUC ({s['opportunities']} opportunities, {s['survived']} survived)", f(s["auc"]))
    cal = s["calibration"]
    t.add_row("Brier / ECE", f"{f(cal['brier'])} / {f(cal['ece'])}")
    for k in ("without_model", "with_model"):
        x = rule[k]
        t.add_row(f"rule {k.replace('_', ' ')}: Sharpe (trades, PnL bps)",
                  f"{f(x['sharpe'])} ({x['trades']}, {x['pnl_bps']:.1f})")
    t.add_row("edge (bps)", f(m["edge_bps"]))
    t.add_row("s/epoch (median)", f(sorted(m["epoch_seconds"])[len(m["epoch_seconds"]) // 2]))
    console.print(t)
    console.print(f"archived as {sha}", highlight=False)


@model_app.command("list")
def model_list(config: ConfigOpt = None, db: DbOpt = None) -> None:
    """Registered models, newest first; the live one marked."""
    from sqlalchemy.orm import Session

    from cryptoarb.ml.registry import list_models

    _, engine = _open(config, db)
    with Session(engine) as s:
        models = list_models(s)
    engine.dispose()
    if not models:
        finish(nothing="no model registered yet (arb retrain)")
    t = Table(title="Models")
    t.add_column("version (sha256)", no_wrap=True, min_width=16)
    t.add_column("status", no_wrap=True)
    t.add_column("trained (UTC)")
    t.add_column("RMSE model/persist.")
    t.add_column("parent", no_wrap=True)
    t.add_column("reason", overflow="fold")
    for m in models:
        r = m.metrics.get("rmse", {})
        rm = f"{r.get('model', 0):.3f}/{r.get('persistence', 0):.3f}" if r else "-"
        t.add_row(m.sha256[:16], m.status, m.trained_at.strftime("%Y-%m-%d %H:%M") if m.trained_at else "-",
                  rm, (m.parent or "-")[:12], m.reason or "")
    console.print(t)


@model_app.command("show")
def model_show(
    version: Annotated[str | None, typer.Option("--version", help="sha256 (or a unique prefix); default: live")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """One model's metadata and metrics as JSON."""
    from sqlalchemy.orm import Session

    from cryptoarb.ml.registry import RegistryError, get_model, live_model

    _, engine = _open(config, db)
    try:
        with Session(engine) as s:
            info = get_model(s, version) if version else live_model(s)
    except RegistryError as e:
        fail(str(e))
    finally:
        engine.dispose()
    if info is None:
        finish(nothing="no live model (arb model list)")
        return
    console.print_json(json.dumps(info.as_dict()))


@model_app.command("swap")
def model_swap(
    version: Annotated[str, typer.Option("--version", help="sha256 (or a unique prefix) to make live")],
    reason: Annotated[str, typer.Option("--reason", help="Recorded in the audit log")] = "manual swap",
    models_dir: ModelsDirOpt = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Roll back or forward: verify the archive's hash, load it, then make it live."""
    from sqlalchemy.orm import Session

    from cryptoarb.ml.alerts import alerting
    from cryptoarb.ml.registry import RegistryError, swap

    settings, engine = _open(config, db)
    try:
        with alerting(settings, "arb model swap"), Session(engine) as s:
            ev = swap(s, _models_dir(settings, models_dir), version, reason, actor="cli")
    except RegistryError as e:
        fail(f"{e}; the live model is unchanged")
    finally:
        engine.dispose()
    console.print(f"live model: {ev.new} (was {ev.old or 'none'})", highlight=False)


@model_app.command("shadow")
def model_shadow(
    version: Annotated[str, typer.Option("--version", help="The candidate's sha256 (or a unique prefix)")],
    from_file: Annotated[Path | None, typer.Option("--from", help="Replayed series file instead of the DB")] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    group: GroupOpt = None,
    metric: Annotated[str | None, typer.Option("--metric", help="rmse, auc or sharpe (default ml.shadow_metric)")]
    = None,
    window: Annotated[int | None, typer.Option("--window", min=10, help="Steps compared (default ml.shadow_window)")]
    = None,
    models_dir: ModelsDirOpt = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Score a stream with the candidate beside the live model; promote it only if it wins."""
    from sqlalchemy.orm import Session

    from cryptoarb.ml.dataset import DatasetError, load
    from cryptoarb.ml.export import load_series
    from cryptoarb.ml.registry import RegistryError
    from cryptoarb.ml.shadow import shadow_test

    settings, engine = _open(config, db)
    a, b = _range(since, until)
    try:
        from cryptoarb.ml.alerts import alerting

        series = load(from_file) if from_file is not None else load_series(engine, a, b, group)
        with alerting(settings, "arb model shadow"), Session(engine) as s:
            res = shadow_test(s, _models_dir(settings, models_dir), version, series,
                              metric or settings.ml.shadow_metric, window or settings.ml.shadow_window, actor="cli")
    except (DatasetError, RegistryError) as e:
        fail(str(e))
    finally:
        engine.dispose()
    console.print(f"shadow test {res.test_id}: {res.note}", highlight=False)
