"""Lists the packages: the library in pmtoolkit/, the click app in cli/ installed as
pmtoolkit.cli, data/ installed as pmtoolkit.data
and pipelines/ as pmtoolkit.pipelines. Everything else is in pyproject.toml."""
from setuptools import find_packages, setup

packages = find_packages(include=["pmtoolkit", "pmtoolkit.*"])
packages += ["pmtoolkit.cli"] + [f"pmtoolkit.cli.{p}" for p in find_packages("cli")]
packages += ["pmtoolkit.data"]  # files below it are package data (see pyproject)
packages += ["pmtoolkit.pipelines"]  # the shipped pipeline TOML files (pipelines/)

setup(packages=packages)
