"""Benchmark 3: command-line latency against the unavoidable part.

The unavoidable part of a render is `import torch, timm` + creating the model +
one forward pass; `anycapture --help` should import none of them.

    python bench/cli_latency.py [--quick] [--json out.json]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import interleaved, parse_args, report

REPO = Path(__file__).resolve().parents[1]
UNAVOIDABLE = (
    "import torch, timm; "
    "m = timm.create_model('{model}', pretrained=False).eval(); "
    "torch.inference_mode().__enter__(); m(torch.randn(1, 3, 224, 224))"
)


def main() -> None:
    args = parse_args(__doc__ or "")
    model = "vit_tiny_patch16_224" if args.quick else "vit_small_patch16_224"
    out = Path(tempfile.mkdtemp(prefix="anycapture-bench-"))
    cli = [sys.executable, "-m", "anycapture"]
    env_cmds = {
        "import+create+forward (unavoidable)": [
            sys.executable,
            "-c",
            UNAVOIDABLE.format(model=model),
        ],
        "anycapture --help": [*cli, "--help"],
        "anycapture render (3 figures)": [
            *cli,
            "render",
            "--model",
            model,
            "--image",
            str(REPO / "assets" / "cat.jpg"),
            "--no-pretrained",
            "--quiet",
            "--out",
            str(out),
        ],
        "python -c pass (interpreter start)": [sys.executable, "-c", "pass"],
    }

    def runner(command: list[str]):  # type: ignore[no-untyped-def]
        def run() -> None:
            subprocess.run(command, check=True, capture_output=True, cwd=REPO)

        return run

    variants = {name: runner(cmd) for name, cmd in env_cmds.items()}
    rounds = 1 if args.quick else 5
    # min: on a shared machine other load only ever adds to a process's wall time
    results = interleaved(variants, rounds=rounds, number=1, statistic=min)
    report(
        f"command-line latency, wall seconds, fastest of {rounds} interleaved rounds "
        f"({model}, CPU)",
        results,
        "import+create+forward (unavoidable)",
        "s",
        args,
    )


if __name__ == "__main__":
    main()
