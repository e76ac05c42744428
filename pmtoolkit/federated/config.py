"""Settings of a federated run (light to import: the CLI reads them before anything heavy).

A run file is TOML with three tables: ``[federated]`` (this module's :class:`FederatedConfig`:
which task, which data, how many sites and how the data are split across them, the Flower
strategy and its rounds), ``[data]`` (how the task reads its data, e.g. the SMILES and
target columns of a molecule table) and ``[model]`` (the domain model's own config, e.g.
``PropertyConfig`` keys for ``task = "property"``). Unknown tables and keys are errors that
name them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

from pmtoolkit.core.config import EPOCHS, FRACTION, SEED, Range
from pmtoolkit.core.errors import ConfigError

SECTIONS = ("federated", "data", "model")


@dataclass
class FederatedConfig:
    """How a model is trained across simulated sites with Flower."""

    task: str = field(default="property", metadata={
        "help": "what is trained: property (molecular property GNN) or ehr (risk model over "
                "visit sequences)"})
    data: str = field(default="", metadata={
        "help": "the dataset: a file or folder, or a shipped dataset's name (esol, "
                "synthea_example)"})
    sites: int = field(default=4, metadata={"range": Range(1, 1000),
        "help": "number of simulated sites (clients)"})
    split: Literal["iid", "dirichlet", "group"] = field(default="dirichlet", metadata={
        "help": "how data are dealt to sites: iid (at random), dirichlet (label skew: each "
                "class's share per site drawn from Dirichlet(alpha)), group (whole groups of "
                "--group-by per site, e.g. scaffolds)"})
    alpha: float = field(default=0.5, metadata={"range": Range(0, 1e6, min_open=True),
        "help": "dirichlet concentration: small = strong label skew, large = near iid"})
    group_by: str = field(default="", metadata={
        "help": "split = group: what groups the data (property: scaffold; ehr: age or sex)"})
    min_site_size: int = field(default=10, metadata={"range": Range(1, 10**9),
        "help": "fewest training samples a site may hold (dirichlet redraws until each has)"})
    test_fraction: float = field(default=0.2, metadata={"range": Range(0, 1, max_open=True),
        "help": "share held out before the split, kept by the server to test every round's "
                "global model (0: no test set)"})
    valid_fraction: float = field(default=0.1, metadata={"range": Range(0, 1, max_open=True),
        "help": "share of each site kept for the federated evaluation on that site"})
    split_seed: int = field(default=0, metadata={"range": SEED,
        "help": "seed of the test hold-out and of the site split"})
    strategy: Literal["fedavg", "fedprox"] = field(default="fedavg", metadata={
        "help": "Flower strategy: fedavg, or fedprox (FedAvg + a proximal term in the local "
                "loss)"})
    proximal_mu: float = field(default=0.01, metadata={"range": Range(0, 1e6),
        "help": "fedprox: weight mu of mu/2 * ||w - w_global||^2 in each site's loss"})
    rounds: int = field(default=10, metadata={"range": Range(1, 100_000),
        "help": "federated rounds"})
    local_epochs: int = field(default=1, metadata={"range": EPOCHS,
        "help": "epochs each selected site trains per round"})
    fraction_fit: float = field(default=1.0, metadata={"range": Range(0, 1, min_open=True),
        "help": "share of sites that train in each round"})
    fraction_evaluate: float = field(default=1.0, metadata={"range": FRACTION,
        "help": "share of sites that evaluate the global model on their own data each round"})
    centralised: bool = field(default=True, metadata={
        "help": "also train the same model on all sites' data pooled, for the same number of "
                "epochs, as the reference"})
    seed: int = field(default=0, metadata={"range": SEED,
        "help": "model seed (initial weights, shuffling)"})
    timeout: float = field(default=900.0, metadata={"range": Range(0, 1e7, min_open=True),
        "help": "abort when no round finishes for this many seconds"})
    output: str = field(default="", metadata={
        "help": "output folder (-o on the command line wins)"})


@dataclass
class FederatedRunConfig:
    """A whole run file: the federated settings and the task's ``[data]`` and ``[model]``
    tables, still as plain values (the task turns them into its own dataclasses)."""

    federated: FederatedConfig
    data: dict[str, Any]
    model: dict[str, Any]


def parse_overrides(items: tuple[str, ...] | list[str]) -> dict[str, dict[str, Any]]:
    """``--set key=value`` options as ``{section: {key: value}}``: ``key`` is
    ``section.name`` or a bare ``[federated]`` name; the value is read as a TOML value
    (``3``, ``0.5``, ``true``, ``["a", "b"]``), else kept as text."""
    import tomllib

    from pmtoolkit.core.config import check_keys

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. rounds=5 or "
                              "model.hidden_size=64")
        section, dot, name = key.partition(".")
        if not dot:
            section, name = "federated", key
        check_keys({section: None}, SECTIONS, where=f"--set {item!r}", what="table")
        raw = raw.strip()
        if "\n" in raw or "\r" in raw:  # a second line would be read as more TOML keys
            raise ConfigError(f"--set {key}: the value must be on one line")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        except RecursionError:
            raise ConfigError(f"--set {key}: the value is nested too deeply") from None
        out.setdefault(section, {})[name] = value
    return out


def load_run_config(path: str | os.PathLike | None = None, overrides: tuple[str, ...] = (),
                    *, output: str | os.PathLike | None = None) -> FederatedRunConfig:
    """Read a run file (or none: defaults) with ``--set`` overrides on top."""
    from pmtoolkit.core.config import check_tables, from_mapping, load_file

    data = load_file(path) if path is not None else {}
    source = f"'{path}'" if path is not None else "settings"
    check_tables(data, SECTIONS, where=source)
    layers = {s: dict(data.get(s, {})) for s in SECTIONS}
    for section, values in parse_overrides(overrides).items():
        layers[section].update(values)
    if output is not None:
        layers["federated"]["output"] = str(output)
    fed = from_mapping(FederatedConfig, layers["federated"], source=f"[federated] of {source}")
    check(fed)
    return FederatedRunConfig(fed, layers["data"], layers["model"])


def check(c: FederatedConfig) -> None:
    """Values no run can use; one-line errors naming the setting."""
    from pmtoolkit.core.config import check_ranges

    check_ranges(c, source="[federated]")  # a config built in Python has not been checked
    if not c.data:
        raise ConfigError("no dataset: set data = a file, folder or shipped dataset name in "
                          "[federated]")
    if c.sites < 2:
        raise ConfigError(f"sites = {c.sites}: federated training needs at least 2 sites")
    if c.rounds < 1 or c.local_epochs < 1:
        raise ConfigError("rounds and local_epochs must be at least 1")
    if c.alpha <= 0:
        raise ConfigError(f"alpha = {c.alpha}: the Dirichlet concentration must be positive")
    if c.split == "group" and not c.group_by:
        raise ConfigError("split = 'group' needs group_by (e.g. scaffold)")
    if not 0.0 < c.fraction_fit <= 1.0:
        raise ConfigError(f"fraction_fit = {c.fraction_fit}: must be in (0, 1]")
    if not 0.0 <= c.fraction_evaluate <= 1.0:
        raise ConfigError(f"fraction_evaluate = {c.fraction_evaluate}: must be in [0, 1]")
    for name in ("test_fraction", "valid_fraction"):
        if not 0.0 <= getattr(c, name) < 1.0:
            raise ConfigError(f"{name} = {getattr(c, name)}: must be in [0, 1)")
    if c.proximal_mu < 0:
        raise ConfigError(f"proximal_mu = {c.proximal_mu}: must be >= 0")
    if c.min_site_size < 1:
        raise ConfigError("min_site_size must be at least 1")
    if c.timeout <= 0:
        raise ConfigError("timeout must be positive")
