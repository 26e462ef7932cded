"""What a run shows and leaves behind: progress bar, metrics log, sample grids, loss curves, GIF.

Only the main process prints or writes; other processes get a reporter that does nothing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path


from ganforge.train import trackers
from ganforge.data.images import save_image_grid
from ganforge.core.files import atomic_path
from ganforge.core.registry import plugin_code

from ganforge.io.runfiles import METRICS_FILE, SAMPLES_DIR, read_metrics  # noqa: F401 - read_metrics is part of this module's API


class Reporter:
    def __init__(self, run, console=None, progress: bool = True):
        from rich.console import Console

        self.run = run
        self.active = run.is_main
        self.console = console or Console(stderr=True)
        self.show_bar = progress and self.active and self.console.is_terminal
        self._progress = None
        self._task = None
        self._t0 = None
        self._t_window = None
        self._step_window = 0
        self._last = {}
        self._rate = 0.0
        self._finished = False

    def line(self, text: str) -> None:
        if self.active:
            self.console.print(text, highlight=False)

    def start(self) -> None:
        run = self.run
        if not self.active:
            return
        acc = run.accelerator
        self.line(
            f"[bold]ganforge[/bold] {run.recipe.name}: {run.recipe.train.steps} steps, batch {run.recipe.train.batch_size} "
            f"per process, {_describe(acc.distributed_type.value, run.world)} on {run.device}, "
            f"{run.threads} thread(s) each, mixed precision {acc.mixed_precision}"
        )
        self.line(f"run directory: {run.run_dir}")
        # After a resume the logged time continues from where the metrics log left off.
        rows = read_metrics(run.run_dir / METRICS_FILE)
        offset = rows[-1]["time"] if rows else 0.0
        self._t_window = time.perf_counter()
        self._t0 = self._t_window - offset
        self._step_window = run.step
        trackers.start(run)
        if self.show_bar:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("[bold]train[/bold]"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stats]}"),
                TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("train", total=run.recipe.train.steps, completed=run.step, stats="")

    def step(self, logs: dict[str, float]) -> None:
        run = self.run
        if not self.active:
            return
        log = run.recipe.log
        self._last = logs
        if run.step % log.every == 0 or run.step == run.recipe.train.steps:
            now = time.perf_counter()
            steps = run.step - self._step_window
            if steps > 0:
                self._rate = steps * run.recipe.train.batch_size * run.world / max(now - self._t_window, 1e-9)
            self._t_window, self._step_window = now, run.step
            record = {"step": run.step, "time": round(now - self._t0, 3), "images_per_s": round(self._rate, 2)}
            record.update({k: round(float(v), 6) for k, v in logs.items()})
            # The factor the step just taken used (steps count from 0 inside the loop).
            record.update(run.lr.log_values(run.step - 1))
            with open(run.run_dir / METRICS_FILE, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
            trackers.log(run, record)
            stats = "  ".join(f"{k} {v:.3f}" for k, v in logs.items()) + f"  {self._rate:.0f} img/s"
            if self._progress is not None:
                self._progress.update(self._task, completed=run.step, stats=stats)
            elif run.step % (log.every * 10) == 0 or run.step == run.recipe.train.steps:
                self.line(f"step {run.step}/{run.recipe.train.steps}  {stats}")
        elif self._progress is not None:
            self._progress.update(self._task, completed=run.step)

    def grid(self, fixed) -> Path | None:
        run = self.run
        nets = run.algorithm_call("eval_networks")
        modes = {name: net.training for name, net in nets.items()}
        for net in nets.values():
            net.eval()
        try:
            with plugin_code(run.algorithm_component, "drawing a progress grid"):
                images, nrow = run.algorithm.progress_grid(nets, fixed)
        finally:
            for name, net in nets.items():
                net.train(modes[name])
        path = run.run_dir / SAMPLES_DIR / f"step-{run.step:08d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image_grid(images.float().cpu(), path, nrow=nrow)
        trackers.log_grid(run, path)
        self.html("running")
        return path

    def html(self, status: str) -> None:
        """Rewrite RUN/report.html; a failure to do so is reported and never stops training."""
        if not self.active or self._t0 is None:
            return
        from ganforge.io.report import write_report

        try:
            write_report(self.run.run_dir, status)
        except Exception as exc:  # noqa: BLE001 - the report is a convenience, the run comes first
            self.line(f"[yellow]warning:[/yellow] could not write report.html: {exc}")

    def finish(self, final: bool) -> None:
        self._finished = True
        self.stop()
        if not self.active:
            return
        run = self.run
        if final:
            if run.recipe.log.plots:
                plot_losses(run.run_dir / METRICS_FILE, run.run_dir / "losses.png")
            if run.recipe.log.gif:
                progress_gif(run.run_dir / SAMPLES_DIR, run.run_dir / "progress.gif")
        self.html("finished" if final else "interrupted")
        elapsed = time.perf_counter() - (self._t0 or time.perf_counter())
        self.line(f"done: step {run.step} in {elapsed:.0f}s; results in {run.run_dir}")
        self.line(f"report: {run.run_dir / 'report.html'} (open it in a browser)")
        if final:
            self.line(f"sample from it: ganforge sample --checkpoint {run.run_dir} --output samples.png")

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if not self._finished:  # stopped by an interrupt or an error: the page says so
            self._finished = True
            self.html("interrupted")


def _describe(distributed_type: str, world: int) -> str:
    if world == 1:
        return "1 process"
    return f"{world} processes ({distributed_type}, world size {world})"


def plot_losses(metrics: Path, out: Path) -> Path | None:
    everything = read_metrics(metrics)
    rows = [r for r in everything if "eval" not in r]
    evals = [r for r in everything if isinstance(r.get("eval"), dict)]  # scores taken during training
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in rows[-1] if k not in ("step", "time", "images_per_s", "lr_factor")]
    if evals:
        fig, (ax, ax_eval) = plt.subplots(2, 1, figsize=(8, 6.5), dpi=100, sharex=True, height_ratios=[2, 1])
    else:
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    steps = [r["step"] for r in rows]
    for key in keys:
        values = [r.get(key, float("nan")) for r in rows]
        ax.plot(steps, values, label=key, linewidth=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    if evals:
        score = next((k for k in evals[-1]["eval"] if not k.endswith(("_std", "_subset_size", "_subsets"))), None)
        if score is not None:
            ax_eval.plot([r["step"] for r in evals], [r["eval"].get(score, float("nan")) for r in evals],
                         marker="o", linewidth=1, color="tab:red", label=score)
            ax_eval.set_ylabel(score)
            ax_eval.set_xlabel("step")
            ax_eval.grid(alpha=0.3)
            ax_eval.legend()
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp)
    plt.close(fig)
    return out


def progress_gif(samples_dir: Path, out: Path, duration: float = 0.4) -> Path | None:
    """A GIF of the progress grids, with the step number drawn on each frame."""
    from PIL import Image, ImageDraw

    frames_paths = sorted(samples_dir.glob("step-*.png"))
    if not frames_paths:
        return None
    frames = []
    for path in frames_paths:
        img = Image.open(path).convert("RGB")
        step = int(path.stem.split("-")[1])
        draw = ImageDraw.Draw(img)
        text = f"step {step}"
        box = draw.textbbox((0, 0), text)
        draw.rectangle((0, 0, box[2] + 6, box[3] + 4), fill=(0, 0, 0))
        draw.text((3, 1), text, fill=(255, 255, 255))
        frames.append(img)
    with atomic_path(out) as tmp:
        frames[0].save(tmp, save_all=True, append_images=frames[1:], duration=int(duration * 1000), loop=0)
    return out
