"""The vision extra's packaging, checked without it: its constraints file, light imports, and the one-line
error that names the extra when open_clip is not installed."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, spec = re.match(r"([A-Za-z0-9_.-]+)\s*(.*)", line).groups()
            out[name.lower().replace("_", "-")] = spec
    return out


def test_vision_constraints_are_the_main_ones_with_torch_2_14_and_its_torchvision():
    main, vision = pins(ROOT / "constraints.txt"), pins(ROOT / "constraints-vision.txt")
    assert main["torch"] == "==2.13.0"
    assert vision["torch"] == "==2.14.1" and vision["torchvision"] == "==0.29.1"
    assert {k: v for k, v in main.items() if k != "torch"} == \
        {k: v for k, v in vision.items() if k in main and k != "torch"}
    line = re.search(r"^vision = \[(.*)\]$", (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    extra = re.findall(r'"([^"]+)"', line)
    assert len(extra) >= 2
    for req in extra:
        name = re.match(r"[A-Za-z0-9_.-]+", req).group(0).lower().replace("_", "-")
        assert name in vision, f"the vision extra's {name} is not pinned in constraints-vision.txt"


def test_evobench_and_the_image_modules_import_without_the_vision_stack():
    code = ("import sys, evobench, evobench.registry, evobench.tasks.image_prompt, evobench.models.clip, "
            "evobench.models.diffusion, evobench.models.tiny_diffusion, evobench.metrics.clip; "
            "from evobench.registry import TASKS; TASKS.get('image-prompt'); "
            "print(sorted(m for m in ('open_clip', 'diffusers', 'torchvision', 'PIL') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


@pytest.mark.skipif(importlib.util.find_spec("open_clip") is not None, reason="open_clip is installed here")
def test_without_open_clip_the_task_is_one_line_naming_the_extra(tmp_path, capsys):
    from evobench.cli import main

    assert main(["run", "--tasks", "image-prompt", "--baselines", "random-search", "--budget", "1",
                 "--no-tracking", "--no-progress", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "image-prompt" in err and "pip install 'evobench[vision]'" in err, err
