"""Fingerprints through RDKit's generator API (no deprecation warnings): Morgan/ECFP bits and
counts, and a few classic alternatives, as dense NumPy matrices."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

from pmtoolkit.core.config import Range

if TYPE_CHECKING:
    import numpy as np

FingerprintKind = Literal["morgan", "rdkit", "atompair", "torsion", "maccs"]
FINGERPRINT_KINDS: tuple[str, ...] = get_args(FingerprintKind)


@dataclass
class FingerprintConfig:
    kind: FingerprintKind = field(default="morgan", metadata={"help": "fingerprint family"})
    # radius 0 is the atoms alone; beyond 8 bonds an environment is most of a drug molecule
    radius: int = field(default=2, metadata={"range": Range(0, 8),
                                             "help": "Morgan radius (2 = ECFP4, 3 = ECFP6)"})
    # one output column per bit: 65,536 columns is already far past any model's use
    n_bits: int = field(default=2048, metadata={"range": Range(1, 65_536),
                                                "help": "length of the folded fingerprint"})
    counts: bool = field(default=False, metadata={"help": "count occurrences instead of bits"})
    chirality: bool = field(default=False, metadata={"help": "include chirality (Morgan)"})
    features: bool = field(default=False, metadata={
        "help": "pharmacophoric atom invariants (FCFP instead of ECFP)"})

    def __post_init__(self) -> None:
        from pmtoolkit.core.config import check_ranges
        from pmtoolkit.core.errors import ConfigError

        if self.kind not in FINGERPRINT_KINDS:
            raise ConfigError(f"fingerprint config: kind {self.kind!r} is unknown",
                              hint=f"choose from {', '.join(FINGERPRINT_KINDS)}")
        for name in ("radius", "n_bits"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"fingerprint config: {name.replace('_', '-')} must be an "
                                  f"integer, got {value!r}")
        check_ranges(self, source="fingerprint config")


def _generator(cfg: FingerprintConfig):
    from rdkit.Chem import rdFingerprintGenerator as G

    if cfg.kind == "morgan":
        inv = G.GetMorganFeatureAtomInvGen() if cfg.features else None
        return G.GetMorganGenerator(radius=cfg.radius, fpSize=cfg.n_bits,
                                    includeChirality=cfg.chirality, atomInvariantsGenerator=inv)
    if cfg.kind == "rdkit":
        return G.GetRDKitFPGenerator(fpSize=cfg.n_bits)
    if cfg.kind == "atompair":
        return G.GetAtomPairGenerator(fpSize=cfg.n_bits)
    if cfg.kind == "torsion":
        return G.GetTopologicalTorsionGenerator(fpSize=cfg.n_bits)
    return None


def fingerprints(mols: Sequence[Any], config: FingerprintConfig | None = None) -> np.ndarray:
    """An ``(n, n_bits)`` uint8 matrix (bits) or uint16/uint8 counts; rows of None are zero."""
    import numpy as np

    cfg = config or FingerprintConfig()
    if cfg.kind == "maccs":
        from rdkit.Chem import MACCSkeys

        out = np.zeros((len(mols), 167), dtype=np.uint8)
        for i, mol in enumerate(mols):
            if mol is not None:
                bits = list(MACCSkeys.GenMACCSKeys(mol).GetOnBits())
                out[i, bits] = 1
        return out
    gen = _generator(cfg)
    dtype = np.uint16 if cfg.counts else np.uint8
    out = np.zeros((len(mols), cfg.n_bits), dtype=dtype)
    for i, mol in enumerate(mols):
        if mol is None:
            continue
        if cfg.counts:
            out[i] = np.minimum(gen.GetCountFingerprintAsNumPy(mol), np.iinfo(dtype).max)
        else:
            out[i] = gen.GetFingerprintAsNumPy(mol)
    return out


def morgan(mols: Sequence[Any], radius: int = 2, n_bits: int = 2048,
           counts: bool = False) -> np.ndarray:
    """ECFP-style Morgan fingerprints (radius 2 = ECFP4)."""
    return fingerprints(mols, FingerprintConfig("morgan", radius, n_bits, counts))


def morgan_bit_info(mol: Any, radius: int = 2, n_bits: int = 2048) -> dict[int, tuple]:
    """Which atom environments set each bit of ``mol``'s :func:`morgan` fingerprint:
    ``{bit: ((center atom, radius), ...)}`` (RDKit's bit-info map), for mapping a bit's
    weight back onto atoms."""
    from rdkit.Chem import rdFingerprintGenerator as G

    extra = G.AdditionalOutput()
    extra.AllocateBitInfoMap()
    _generator(FingerprintConfig("morgan", radius, n_bits)).GetFingerprint(
        mol, additionalOutput=extra)
    return dict(extra.GetBitInfoMap())


def tanimoto(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise Tanimoto similarity of two bit (or count: min/max) fingerprint matrices."""
    import numpy as np

    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    if a.ndim == 1:
        a = a[None]
    if b.ndim == 1:
        b = b[None]
    if a.max(initial=0) <= 1 and b.max(initial=0) <= 1:
        inter = a @ b.T
        union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    else:  # counts: generalised (Ruzicka) similarity
        inter = np.minimum(a[:, None, :], b[None, :, :]).sum(-1)
        union = np.maximum(a[:, None, :], b[None, :, :]).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sim = np.where(union > 0, inter / union, 0.0)
    return sim
