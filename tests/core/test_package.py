"""The package's top level: names load on first use, and ``capture`` is the function."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_import_loads_no_core_until_a_name_is_used() -> None:
    out = _run(
        """
        import sys, anycapture
        print('bytecode' in sys.modules, 'numpy' in sys.modules, 'torch' in sys.modules)
        anycapture.get_local
        print('bytecode' in sys.modules, 'torch' in sys.modules)
        """
    )
    assert out.split() == ["False", "False", "False", "True", "False"]


def test_capture_is_the_function_whichever_import_comes_first() -> None:
    out = _run(
        """
        import anycapture.scoped_capture, anycapture.decorator
        from anycapture import capture, get_local
        import anycapture
        print(callable(capture), capture is anycapture.capture, type(get_local).__name__)
        """
    )
    assert out.split() == ["True", "True", "GetLocal"]


def test_star_import_gives_the_core_without_torch() -> None:
    out = _run(
        """
        import sys
        from anycapture import *
        print(sorted(k for k in dir() if not k.startswith('_')), 'torch' in sys.modules)
        """
    )
    names, torch_loaded = out.rsplit(" ", 1)
    assert "'capture'" in names and "'get_local'" in names and "'StoragePolicy'" in names
    assert torch_loaded == "False"


def test_dir_shows_the_public_names_only() -> None:
    import anycapture

    names = dir(anycapture)
    assert {"get_local", "capture", "attention_maps", "figure", "__version__"} <= set(names)
    assert not {"TYPE_CHECKING", "annotations", "importlib"} & set(names)
