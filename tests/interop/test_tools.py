"""
Tests for L{tests.interop.tools}: missing tools are installed, and a failed
installation fails the tests with the installer's output.
"""

from __future__ import annotations

import json
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from tests.interop import tools


class RunTests(SynchronousTestCase):
    """
    L{tools._run} turns every way a command can fail into a L{tools.ToolError}.
    """

    def test_failureCarriesOutput(self) -> None:
        """
        A command that exits with an error raises L{tools.ToolError} with its
        exit status and what it printed on both streams.
        """
        script = "import sys; print('to stdout'); sys.exit('to stderr')"
        error = self.assertRaises(tools.ToolError, tools._run, [sys.executable, "-c", script], 30)
        message = str(error)
        self.assertIn("exited with 1", message)
        self.assertIn("to stdout", message)
        self.assertIn("to stderr", message)

    def test_timeout(self) -> None:
        """
        A command still running after its time raises L{tools.ToolError}.
        """
        argv = [sys.executable, "-c", "import time; time.sleep(30)"]
        error = self.assertRaises(tools.ToolError, tools._run, argv, 0.5)
        self.assertIn("took longer than 0.5 s", str(error))

    def test_missingCommand(self) -> None:
        """
        A command that can't start raises L{tools.ToolError}.
        """
        error = self.assertRaises(tools.ToolError, tools._run, ["/nonexistent/wsproto_tw-tool"], 30)
        self.assertIn("could not start", str(error))


class EnsureToolsTests(SynchronousTestCase):
    """
    L{tools.ensureTools} installs once per process and reports the versions.
    """

    def test_failureIsRememberedAndRaised(self) -> None:
        """
        A failed installation raises its L{tools.ToolError} on every call,
        without trying again.
        """
        calls = []

        def failing() -> tools.Tools:
            calls.append(None)
            raise tools.ToolError("apt-get install -y chromium exited with 100:\nE: no space")

        self.patch(tools, "_cached", None)
        self.patch(tools, "_install", failing)
        for attempt in range(2):
            error = self.assertRaises(tools.ToolError, tools.ensureTools)
            self.assertIn("E: no space", str(error))
        self.assertEqual(len(calls), 1)

    def test_installerErrorsBecomeToolErrors(self) -> None:
        """
        An installer that can't be run at all raises L{tools.ToolError} too,
        not another exception.
        """

        def broken() -> tools.Tools:
            raise subprocess.SubprocessError("no such thing")

        self.patch(tools, "_cached", None)
        self.patch(tools, "_install", broken)
        error = self.assertRaises(tools.ToolError, tools.ensureTools)
        self.assertIn("no such thing", str(error))

    def test_versions(self) -> None:
        """
        Once installed, every peer's version is known, and the npm packages
        are the ones C{package.json} pins.
        """
        found = tools.ensureTools().versions
        for name in ("node", "ws", "playwright-core", "chromium", "websockets", "autobahn"):
            self.assertRegex(found[name], r"^\d+(\.\d+)+")
        pinned = json.loads((tools.HERE / "package.json").read_text())["dependencies"]
        for name, version in pinned.items():
            self.assertEqual(found[name], version)
