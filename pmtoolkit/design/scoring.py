"""Scoring functions for goal-directed design, defined in TOML from components (REINVENT's
shape): each component maps a molecule to a raw value, a desirability transform maps that
to [0, 1], and a weighted mean aggregates the components.

.. code-block:: toml

    [scoring]
    aggregation = "geometric"          # or "arithmetic"

    [[scoring.component]]
    type = "similarity"
    smiles = ["Cc1ccc(-c2cc(C(F)(F)F)nn2-c2ccc(S(N)(=O)=O)cc2)cc1"]
    weight = 2
    transform = { kind = "sigmoid", low = 0.2, high = 0.7 }

    [[scoring.component]]
    type = "qed"

Unknown keys, types and transforms are errors that name the key. A component that cannot
score a molecule (an invalid SMILES, a descriptor that fails) gives NaN for it and every array
stays aligned with the input; the total of such a molecule is NaN (optimisation counts it 0).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from pmtoolkit.core.config import from_mapping
from pmtoolkit.core.errors import ConfigError

# ----------------------------------------------------------------------------- transforms


@dataclass
class Transform:
    """Desirability: raw value -> [0, 1].

    - ``none``: the raw value, clipped to [0, 1];
    - ``sigmoid``: rises from ~0 at ``low`` to ~1 at ``high``; ``reverse_sigmoid`` falls;
    - ``range``: ~1 between ``low`` and ``high``, falling off over ``softness`` outside;
    - ``step``: 1 between ``low`` and ``high`` (inclusive), else 0.
    """

    kind: Literal["none", "sigmoid", "reverse_sigmoid", "range", "step"] = "none"
    low: float = 0.0
    high: float = 1.0
    softness: float = 1.0

    def __post_init__(self):
        if self.kind != "none" and not self.low < self.high:
            raise ConfigError(f"transform {self.kind}: low ({self.low}) must be below high "
                              f"({self.high})")
        if self.softness <= 0:
            raise ConfigError("transform softness must be positive")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            if self.kind == "none":
                return np.clip(x, 0.0, 1.0)
            if self.kind == "step":
                return np.where(np.isnan(x), np.nan, ((x >= self.low) & (x <= self.high)) * 1.0)
            if self.kind == "range":
                k = 10.0 / self.softness
                return _logistic(k * (x - self.low) + 5) * _logistic(-k * (x - self.high) + 5)
            mid, scale = (self.low + self.high) / 2, 10.0 / (self.high - self.low)
            s = _logistic(scale * (x - mid))
            return s if self.kind == "sigmoid" else 1.0 - s


def _logistic(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


# ----------------------------------------------------------------------------- components

@dataclass
class ComponentConfig:
    """One ``[[scoring.component]]`` table."""

    type: str
    name: str = ""
    weight: float = 1.0
    transform: Transform = field(default_factory=Transform)
    # type-specific settings (each type names the ones it accepts)
    smiles: list[str] = field(default_factory=list)
    smarts: list[str] = field(default_factory=list)
    descriptor: str = ""
    model: str = ""
    target: str = ""
    aggregate: Literal["max", "mean"] = "max"


class Component:
    """Raw values of one property for a batch of molecules (None where invalid)."""

    accepts: tuple[str, ...] = ()
    default_transform: Transform | None = None

    def __init__(self, spec: ComponentConfig):
        self.spec = spec
        self.name = spec.name or spec.type

    def raw(self, mols: Sequence[Any]) -> np.ndarray:
        """Values aligned with ``mols``: NaN for None, the rest from :meth:`batch`."""
        out = np.full(len(mols), np.nan)
        idx = [i for i, m in enumerate(mols) if m is not None]
        if idx:
            out[idx] = self.batch([mols[i] for i in idx])
        return out

    def batch(self, mols: list[Any]) -> np.ndarray:
        """Values of valid molecules; by default :meth:`one` each, NaN where it fails."""
        out = np.full(len(mols), np.nan)
        for i, m in enumerate(mols):
            try:
                out[i] = self.one(m)
            except Exception:  # a molecule RDKit cannot describe scores NaN  # noqa: BLE001
                out[i] = np.nan
        return out

    def one(self, mol: Any) -> float:
        raise NotImplementedError


class QED(Component):
    def one(self, mol):
        from pmtoolkit.chem.descriptors import qed

        return qed(mol)


class SAScore(Component):
    """Synthetic accessibility (1 easy .. 10 hard); by default 1 at 2 or below, 0 at 6+."""

    default_transform = Transform("reverse_sigmoid", low=2.0, high=6.0)

    def one(self, mol):
        from pmtoolkit.chem.descriptors import sa_score

        return sa_score(mol)


class Descriptor(Component):
    accepts = ("descriptor",)

    def __init__(self, spec):
        super().__init__(spec)
        from rdkit.Chem import Descriptors

        functions = dict(Descriptors.descList)
        if spec.descriptor not in functions:
            import difflib

            close = difflib.get_close_matches(spec.descriptor, functions, n=3)
            raise ConfigError(f"unknown RDKit descriptor {spec.descriptor!r}",
                              hint=("did you mean " + ", ".join(close) + "?") if close
                              else "see rdkit.Chem.Descriptors.descList")
        self.function = functions[spec.descriptor]
        self.name = spec.name or spec.descriptor

    def one(self, mol):
        return float(self.function(mol))


class Similarity(Component):
    """Tanimoto similarity (Morgan radius 2, 2048 bits) to reference molecules."""

    accepts = ("smiles", "aggregate")

    def __init__(self, spec):
        super().__init__(spec)
        from pmtoolkit.chem.molecules import parse_smiles

        if not spec.smiles:
            raise ConfigError("similarity component needs reference 'smiles'")
        refs = []
        for s in spec.smiles:
            mol, reason = parse_smiles(s)
            if mol is None:
                raise ConfigError(f"similarity reference {s!r}: {reason}")
            refs.append(mol)
        self.ref = self._fps(refs)

    @staticmethod
    def _fps(mols):
        from rdkit.Chem import rdFingerprintGenerator as G

        gen = G.GetMorganGenerator(radius=2, fpSize=2048)
        return np.array([gen.GetFingerprintAsNumPy(m) for m in mols], dtype=np.float32)

    def batch(self, mols):
        fp = self._fps(mols)
        inter = fp @ self.ref.T
        union = fp.sum(1)[:, None] + self.ref.sum(1)[None, :] - inter
        t = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
        return t.max(axis=1) if self.spec.aggregate == "max" else t.mean(axis=1)


class _Substructure(Component):
    accepts = ("smarts",)

    def __init__(self, spec):
        super().__init__(spec)
        from rdkit import Chem

        if not spec.smarts:
            raise ConfigError(f"{spec.type} component needs 'smarts' patterns")
        self.patterns = []
        for s in spec.smarts:
            p = Chem.MolFromSmarts(s)
            if p is None:
                raise ConfigError(f"{spec.type}: invalid SMARTS {s!r}")
            self.patterns.append(p)

    def one(self, mol):
        return float(any(mol.HasSubstructMatch(p) for p in self.patterns))


class Required(_Substructure):
    """1 when the molecule contains any of the patterns, else 0."""


class Forbidden(_Substructure):
    """A filter: a molecule with any of the patterns gets total score 0."""

    filter = True


class PropertyModelComponent(Component):
    """The prediction of a saved pmtoolkit property model (a file, or a shipped name)."""

    accepts = ("model", "target")

    def __init__(self, spec):
        super().__init__(spec)
        from pmtoolkit.property.run import load

        if not spec.model:
            raise ConfigError("model component needs 'model' (a file or a shipped model name)")
        self.model = load(spec.model)
        names = self.model.target_names
        target = spec.target or names[0]
        if target not in names:
            raise ConfigError(f"model {spec.model!r} has no target {target!r}",
                              hint="its targets: " + ", ".join(names))
        self.column = f"{target}_pred"
        self.name = spec.name or f"{spec.model}:{target}"

    def batch(self, mols):
        from rdkit import Chem

        pred = self.model.predict([Chem.MolToSmiles(m) for m in mols], mols=mols).frame
        return pred[self.column].to_numpy(dtype=np.float64)


COMPONENTS: dict[str, type[Component]] = {
    "qed": QED, "sa_score": SAScore, "descriptor": Descriptor, "similarity": Similarity,
    "required": Required, "forbidden": Forbidden, "model": PropertyModelComponent,
}
_TYPE_SPECIFIC = ("smiles", "smarts", "descriptor", "model", "target", "aggregate")


# ----------------------------------------------------------------------------- function

@dataclass
class ScoringConfig:
    aggregation: Literal["geometric", "arithmetic"] = "geometric"
    component: list[ComponentConfig] = field(default_factory=list)


@dataclass
class Scores:
    """Total and per-component scores (after transform), aligned with the input."""

    total: np.ndarray
    components: dict[str, np.ndarray]
    raw: dict[str, np.ndarray]
    valid: np.ndarray


class ScoringFunction:
    """Components, their weights and the aggregation, built from a ``[scoring]`` table."""

    def __init__(self, config: ScoringConfig):
        if not config.component:
            raise ConfigError("the scoring function has no components",
                              hint="add [[scoring.component]] tables")
        self.config = config
        self.components: list[Component] = []
        for k, spec in enumerate(config.component):
            cls = COMPONENTS.get(spec.type)
            if cls is None:
                from pmtoolkit.core.errors import unknown_name

                err = unknown_name("scoring component type", spec.type, COMPONENTS)
                raise ConfigError(err.message, hint=err.hint)
            extra = [f for f in _TYPE_SPECIFIC
                     if getattr(spec, f) != getattr(ComponentConfig("x"), f) and
                     f not in cls.accepts]
            if extra:
                raise ConfigError(f"component {k + 1} ({spec.type}) does not take "
                                  f"{extra[0]!r}", hint="it takes: " + (
                                      ", ".join(cls.accepts) or "no type-specific keys"))
            if spec.weight < 0:
                raise ConfigError(f"component {k + 1} ({spec.type}): weight must be >= 0")
            comp = cls(spec)
            if spec.transform == Transform() and cls.default_transform is not None:
                comp.transform = cls.default_transform
            else:
                comp.transform = spec.transform
            self.components.append(comp)
        names = [c.name for c in self.components]
        if len(set(names)) != len(names):
            raise ConfigError("two scoring components have the same name",
                              hint="give them distinct 'name' values")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "scoring") -> ScoringFunction:
        return cls(from_mapping(ScoringConfig, data, source=source))

    def __call__(self, smiles: Sequence[str], mols: Sequence[Any] | None = None) -> Scores:
        from pmtoolkit.chem._rdkit import quiet
        from pmtoolkit.core.signals import held
        from pmtoolkit.chem.molecules import parse_smiles

        if mols is None:
            mols = [parse_smiles(s)[0] if s else None for s in smiles]
        valid = np.array([m is not None for m in mols])
        comps, raws = {}, {}
        with quiet():
            for c in self.components:
                with held():  # SMARTS components search substructures
                    raws[c.name] = c.raw(mols)
                comps[c.name] = c.transform(raws[c.name])
        total = self._aggregate(comps)
        for c in self.components:
            if getattr(c, "filter", False):
                total = np.where(raws[c.name] > 0, 0.0, total)
        total = np.where(valid, total, np.nan)
        return Scores(total, comps, raws, valid)

    def _aggregate(self, comps: dict[str, np.ndarray]) -> np.ndarray:
        scored = [(c, comps[c.name]) for c in self.components
                  if not getattr(c, "filter", False) and c.spec.weight > 0]
        if not scored:
            n = len(next(iter(comps.values())))
            return np.ones(n)
        w = np.array([c.spec.weight for c, _ in scored])
        v = np.stack([x for _, x in scored])  # NaN stays NaN
        if self.config.aggregation == "arithmetic":
            return (w[:, None] * v).sum(axis=0) / w.sum()
        with np.errstate(divide="ignore"):
            logv = np.log(np.clip(v, 1e-12, None))
        logv = np.where(np.isnan(v), np.nan, logv)
        return np.exp((w[:, None] * logv).sum(axis=0) / w.sum())


def describe(fn: ScoringFunction) -> str:
    """One line per component (name, weight, transform) for logs and reports."""
    lines = []
    for c in fn.components:
        t = c.transform
        tr = t.kind if t.kind == "none" else f"{t.kind}({t.low:g}, {t.high:g})"
        role = "filter" if getattr(c, "filter", False) else f"weight {c.spec.weight:g}"
        lines.append(f"{c.name}: {role}, transform {tr}")
    return "\n".join(lines)


__all__ = ["COMPONENTS", "ComponentConfig", "ScoringConfig", "ScoringFunction", "Scores",
           "Transform", "describe"]
