"""Install clinicmail as software, not as a checkout: build the wheel, install it into a fresh
virtual environment and run it from a temporary folder (``make wheel-check``; ``.ci/run``).

The fresh environment gets this project's dependencies from the development venv's
site-packages (a path in a ``.pth`` file, so nothing is downloaded and the checkout itself is not
on the path); clinicmail itself comes only from the wheel. Then, with a new SQLite database:
``clinicmail init`` (the migrations and the bundled library), an import, a tick that renders and
stores emails (the templates), the console's static files, and the version.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(  # noqa: S603 - our own commands, no shell
        args, cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"wheel check: {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def _can_build_wheels() -> bool:
    try:
        import setuptools
    except ImportError:
        return False
    major_minor = tuple(int(x) for x in setuptools.__version__.split(".")[:2])
    if major_minor >= (70, 1):  # bdist_wheel is part of setuptools from 70.1
        return True
    try:
        import wheel  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="clinicmail-wheel-") as tmp_name:
        tmp = Path(tmp_name)
        # Without build isolation when this venv can build wheels itself (fast, offline);
        # else pip fetches the build backend named in pyproject.toml.
        isolation = ["--no-build-isolation"] if _can_build_wheels() else []
        run(
            sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
            *isolation,
            "--wheel-dir", str(tmp / "dist"), str(ROOT), cwd=tmp,
        )  # fmt: skip
        (wheel,) = (tmp / "dist").glob("clinicmail-*.whl")
        names = zipfile.ZipFile(wheel).namelist()
        for needed in (
            "storage/migrations/env.py",
            "storage/migrations/versions/0001_foundation.py",
            "campaigns/library/",
            "console/static/",
            "templates/",
        ):
            if not any(n.startswith(needed) for n in names):
                sys.exit(f"wheel check: the wheel lacks {needed}")
        venv = tmp / "venv"
        # Without pip of its own (bootstrapping it cost more than the rest of the install):
        # this venv's uv, or its pip, installs into it.
        run(sys.executable, "-m", "venv", "--without-pip", str(venv), cwd=tmp)
        py = venv / "bin" / "python"
        uv = Path(sys.executable).with_name("uv")
        installer = (
            [str(uv), "pip", "install", "--python", str(py)]
            if uv.exists()
            else [sys.executable, "-m", "pip", "--python", str(py), "install"]
        )
        run(*installer, "--quiet", "--no-deps", "--no-index", str(wheel), cwd=tmp)
        fresh_site = run(
            str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp
        ).strip()
        (Path(fresh_site) / "clinicmail-deps.pth").write_text(
            sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
        )
        work = tmp / "work"
        work.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLINICMAIL_")}
        env.pop("PYTHONPATH", None)
        env.update(
            CLINICMAIL_DATABASE_URL=f"sqlite:///{work / 'clinicmail.db'}",
            CLINICMAIL_SEND_WINDOW="00:00-24:00",
            XDG_STATE_HOME=str(tmp / "state"),
        )
        exe = str(venv / "bin" / "clinicmail")
        where = run(
            str(py), "-c", "import scheduler, console; print(scheduler.__file__)", cwd=work, env=env
        )
        if not where.startswith(str(venv)):
            sys.exit(f"wheel check: clinicmail was imported from {where.strip()}, not the wheel")
        run(exe, "--version", cwd=work, env=env)
        run(exe, "init", cwd=work, env=env)
        people = work / "people.csv"
        people.write_text(
            "email,first_name,symptoms,timezone,consent\n"
            "wheel@example.com,Wyn,lower_back,Europe/London,yes\n",
            encoding="utf-8",
        )
        run(exe, "subscribers", "import", str(people), cwd=work, env=env)
        tick = run(exe, "tick", "--json", cwd=work, env=env)
        if '"sent": 1' not in tick:
            sys.exit(f"wheel check: the tick from the installed package sent nothing: {tick}")
        static = run(
            str(py), "-c",
            "import console, pathlib; print(len(list((pathlib.Path(console.__file__).parent / 'static').iterdir())))",
            cwd=work, env=env,
        )  # fmt: skip
        if int(static) == 0:
            sys.exit("wheel check: the installed package has no console static files")
    print(
        f"wheel check: built, installed and ran {wheel.name} in {time.monotonic() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
