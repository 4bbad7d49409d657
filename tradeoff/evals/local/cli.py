"""`tradeoff local serve|attach|calibrate`."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tradeoff.evals.cli_options import config_option, db_option, json_option
from tradeoff.evals.errors import TradeoffError, UsageError
from tradeoff.evals.local.cost import DEFAULT_UTILISATION
from tradeoff.evals.local.describe import describe_calibration
from tradeoff.evals.local.process import (
    build_command,
    check_port_free,
    check_vllm_installed,
    start_server,
    vllm_python,
)
from tradeoff.evals.local.registration import PROVIDER
from tradeoff.evals.registry import ModelEntry, load_registry
from tradeoff.evals.stopping import stop_on_signals

# Attaching, the health wait and calibration pull in httpx: the commands import them when they
# run, not when `tradeoff` assembles its command tree.
if TYPE_CHECKING:
    from tradeoff.evals.local.calibration import CalibrationSettings


def calibration_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The GPU price and the shape of the calibration load."""
    options = [
        click.option(
            "--gpu-hourly-usd",
            type=click.FloatRange(min=0),
            default=None,
            help="What the GPU costs per hour; enables calibration and pricing.",
        ),
        click.option(
            "--utilisation",
            type=click.FloatRange(min=0, max=1, min_open=True),
            default=DEFAULT_UTILISATION,
            show_default=True,
            help="Share of paid GPU hours spent serving at the calibrated throughput.",
        ),
        click.option("--concurrency", type=click.IntRange(min=1), default=8, show_default=True),
        click.option(
            "--calibration-requests",
            type=click.IntRange(min=1),
            default=16,
            show_default=True,
            help="Requests per calibration phase (prefill, decode).",
        ),
        click.option("--prompt-tokens", type=click.IntRange(min=1), default=512, show_default=True),
        click.option("--max-tokens", type=click.IntRange(min=1), default=128, show_default=True),
        click.option(
            "--rounds",
            type=click.IntRange(min=1),
            default=3,
            show_default=True,
            help="Calibration rounds; prices use all, the record keeps each round's spread.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _settings(kw: dict[str, Any]) -> CalibrationSettings:
    from tradeoff.evals.local.calibration import CalibrationSettings

    return CalibrationSettings(
        concurrency=kw["concurrency"],
        requests=kw["calibration_requests"],
        prompt_tokens=kw["prompt_tokens"],
        max_tokens=kw["max_tokens"],
        rounds=kw["rounds"],
    )


def _report(entry: ModelEntry, as_json: bool, **more: Any) -> None:
    if as_json:
        click.echo(json.dumps({**entry.to_dict(), **more}))
        return
    click.echo(f"registered {entry.name} ({entry.litellm_model} at {entry.api_base}), tier local")
    click.echo(f"  cost: {describe_calibration(entry) or 'not calibrated (no --gpu-hourly-usd)'}")
    for key, value in more.items():
        click.echo(f"  {key}: {value}")


@click.group("local", no_args_is_help=True)
def local() -> None:
    """Serve or attach local vLLM models and price them from GPU time."""


@local.command("serve", context_settings={"ignore_unknown_options": True})
@click.argument("model")
@click.argument("vllm_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--name", default=None, help="Name in models.yaml and served name [default: MODEL's last part]."
)
@click.option("--vllm-python", default=None, help="Python with vLLM [env TRADEOFF_VLLM_PYTHON].")
@click.option(
    "--timeout",
    "timeout_s",
    type=float,
    default=900,
    show_default=True,
    help="Seconds to wait for the server to be ready.",
)
@click.option(
    "--log-file",
    type=click.Path(path_type=Path),
    default=None,
    help="Where vLLM logs [default: a temp file].",
)
@click.option("--detach", is_flag=True, help="Leave the server running and return.")
@calibration_options
@config_option
@db_option
@json_option
def serve(model: str, vllm_args: tuple[str, ...], **kw: Any) -> None:
    """Start vLLM for MODEL, wait until ready, calibrate and register it. Extra vLLM arguments
    go after `--`."""
    from tradeoff.evals.local.attach import attach_server, pick_model
    from tradeoff.evals.local.health import wait_until_healthy

    name = kw["name"] or Path(model.rstrip("/")).name
    python = vllm_python(kw["vllm_python"])
    check_vllm_installed(python)
    check_port_free(kw["host"], kw["port"])
    argv = build_command(
        python, model, port=kw["port"], host=kw["host"], served_name=name, extra_args=vllm_args
    )
    log_path = kw["log_file"] or Path(tempfile.gettempdir()) / f"tradeoff-vllm-{kw['port']}.log"
    # The server runs in a session of its own (its engine processes go down with it), so no
    # signal meant for this command reaches it: whatever stops the command stops it too.
    with stop_on_signals():
        server = start_server(argv, host=kw["host"], port=kw["port"], log_path=log_path)
        try:
            served = pick_model(
                wait_until_healthy(server.base_url, process=server, timeout_s=kw["timeout_s"]),
                name,
            )
            entry = attach_server(
                server.base_url,
                name=name,
                served=served,
                gpu_hourly_usd=kw["gpu_hourly_usd"],
                utilisation=kw["utilisation"],
                settings=_settings(kw),
                config=kw["config"],
                db=kw["db"],
                source="local serve",
            )
            _report(entry, kw["as_json"], pid=server.pid, log=str(log_path))
            if kw["detach"]:
                return
            click.echo("serving; Ctrl-C stops the server", err=True)
            code = server.process.wait()
            raise TradeoffError(f"vLLM exited with code {code}; see {log_path}")
        except BaseException:
            server.stop()
            raise


@local.command("attach")
@click.argument("url")
@click.option("--name", default=None, help="Name in models.yaml [default: the served name].")
@click.option("--model", "served_id", default=None, help="Served model to attach, if several.")
@click.option(
    "--timeout",
    "timeout_s",
    type=float,
    default=30,
    show_default=True,
    help="Seconds to wait for the server to be ready.",
)
@calibration_options
@config_option
@db_option
@json_option
def attach(url: str, **kw: Any) -> None:
    """Register the vLLM server already running at URL (calibrated with --gpu-hourly-usd)."""
    from tradeoff.evals.local.attach import attach_server

    entry = attach_server(
        url,
        name=kw["name"],
        served_id=kw["served_id"],
        gpu_hourly_usd=kw["gpu_hourly_usd"],
        utilisation=kw["utilisation"],
        settings=_settings(kw),
        config=kw["config"],
        db=kw["db"],
        ready_timeout_s=kw["timeout_s"],
    )
    _report(entry, kw["as_json"])


@local.command("calibrate")
@click.argument("name")
@calibration_options
@config_option
@db_option
@json_option
def calibrate(name: str, **kw: Any) -> None:
    """Measure a registered local model's throughput again and update its prices."""
    from tradeoff.evals.local.attach import attach_server

    entry = load_registry(kw["config"]).get(name)
    if entry.tier != "local" or not entry.api_base:
        raise UsageError(f"model {name!r} is not a local model with an api_base")
    if kw["gpu_hourly_usd"] is None and entry.gpu_hourly_usd is None:
        raise UsageError(f"model {name!r} has no gpu_hourly_usd; pass --gpu-hourly-usd X")
    served_id = entry.litellm_model.removeprefix(f"{PROVIDER}/")
    updated = attach_server(
        entry.api_base,
        name=name,
        served_id=served_id,
        gpu_hourly_usd=kw["gpu_hourly_usd"],
        utilisation=kw["utilisation"],
        settings=_settings(kw),
        config=kw["config"],
        db=kw["db"],
        source="local calibrate",
    )
    _report(updated, kw["as_json"])


def register(group: click.Group) -> None:
    group.add_command(local)
