"""
Declares the optional C accelerator; everything else is in setup.cfg. When
no C compiler is available the extension is skipped and wsproto_tw runs on
its pure-Python code.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "wsproto_tw.core._speedups",
            sources=["wsproto_tw/core/_speedups.c"],
            optional=True,
        )
    ]
)
