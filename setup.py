"""Build hook only (metadata lives in pyproject.toml): ship ``models/`` and ``validation/cases/`` in the wheel.

The repository keeps these folders at its top level; a wheel install has no repository, so ``build_py``
copies them under ``greeksmargin/_shipped/`` where :func:`greeksmargin.io.shipped_folder` finds them. A
source checkout (editable install, ``PYTHONPATH``) reads them in place.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
SHIPPED = {"models": "*.toml", "validation/cases": "**/*"}


class BuildPyWithShippedData(build_py):
    """``build_py`` that also copies the shipped data folders into the built package."""

    def run(self):
        """Build the package, then copy ``models/*.toml`` and ``validation/cases/`` under ``_shipped/``."""
        super().run()
        for folder, pattern in SHIPPED.items():
            src = HERE / folder
            if not src.is_dir():  # building from an sdist that lacks them would ship a broken package
                raise SystemExit(f"setup.py: {src} is missing; cannot build greeksmargin without it")
            dest = Path(self.build_lib) / "greeksmargin" / "_shipped" / folder
            for f in sorted(src.glob(pattern)):
                if f.is_file() and "__pycache__" not in f.parts:
                    target = dest / f.relative_to(src)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(f, target)


setup(cmdclass={"build_py": BuildPyWithShippedData})
