"""
Tests for the packaging: a real C{pip install} of the project into a fresh
virtualenv gives a C{twistd websocket} that finds the plugin.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from wsproto_tw.tap import Options

ROOT = Path(__file__).resolve().parent.parent

#: What is not part of the source tree: never copied into the build.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "_trial_temp*", "reports", "__pycache__",
    "*.pyc", "*.so", "*.pyd", "dropin.cache", "node_modules", "out",
)


class InstallTests(SynchronousTestCase):
    """
    The project installs from its source tree like any other package.
    """

    def run_(self, argv: list[str], cwd: str, timeout: float, extraEnv: dict[str, str] | None = None) -> str:
        """
        Run C{argv} without this environment's Python path.

        @param extraEnv: more environment variables.

        @return: its output.
        @raise AssertionError: it failed or took more than C{timeout}
            seconds.
        """
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        env.update(extraEnv or {})
        try:
            done = subprocess.run(
                argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout
            )
        except subprocess.TimeoutExpired as exc:
            self.fail(f"{argv} took more than {timeout} s:\n{(exc.output or b'').decode(errors='replace')}")
        output = done.stdout.decode(errors="replace")
        self.assertEqual(done.returncode, 0, f"{argv} failed:\n{output}")
        return output

    def test_pipInstallFindsPlugin(self) -> None:
        """
        After C{pip install <source tree>} (not editable) into a fresh
        virtualenv, the installed package is the one imported, C{twistd
        websocket --help} lists every option of the plugin, and the console
        scripts run; the C accelerator was built and is in use, unless
        C{WSPROTO_TW_NO_SPEEDUPS} is set, when none was built.
        """
        base = Path(self.mktemp()).resolve()
        source, venv, elsewhere = base / "source", base / "venv", base / "elsewhere"
        shutil.copytree(ROOT, source, ignore=_NOT_SOURCE)
        elsewhere.mkdir()
        self.run_([sys.executable, "-m", "venv", str(venv)], str(elsewhere), 300)
        bin = venv / "bin"
        speedups = not os.environ.get("WSPROTO_TW_NO_SPEEDUPS")
        # A failure to compile it fails the install, rather than leaving it out.
        require = {"WSPROTO_TW_REQUIRE_SPEEDUPS": "1"} if speedups else {}
        self.run_([str(bin / "python"), "-m", "pip", "install", "-q", str(source)], str(elsewhere), 900, require)

        where = self.run_(
            [str(bin / "python"), "-c", "import wsproto_tw; print(wsproto_tw.__file__)"], str(elsewhere), 60
        )
        self.assertTrue(Path(where.strip()).is_relative_to(venv), where)

        accelerated = self.run_(
            [str(bin / "python"), "-c",
             "import importlib.util; from wsproto_tw.core import frames; from wsproto_tw import wire; "
             "print(importlib.util.find_spec('wsproto_tw.core._speedups') is not None, "
             "frames.apply_mask is not frames._mask_python, "
             "importlib.util.find_spec('wsproto_tw._sockets') is not None, "
             "wire.sendEach is not wire._sendEachPython)"],
            str(elsewhere), 60,
        )
        self.assertEqual(accelerated.split(), [str(speedups)] * 4)

        help = self.run_([str(bin / "twistd"), "websocket", "--help"], str(elsewhere), 120)
        self.assertIn("Usage: twistd [options] websocket", help)
        for name, *_ in Options.optParameters:
            self.assertIn(f"--{name}=", help)
        for name in ("port", "subprotocol", "origin"):
            self.assertIn(f"--{name}=", help)

        listing = self.run_([str(bin / "twistd"), "--help"], str(elsewhere), 120)
        self.assertRegex(listing, r"\n\s+websocket\s+WebSocket server")

        self.assertIn("wsproto-tw-conformance", self.run_([str(bin / "wsproto-tw-conformance"), "--help"], str(elsewhere), 60))
