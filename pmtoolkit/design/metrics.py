"""Generation metrics with the MOSES definitions (Polykovskiy et al. 2020, molsets 0.3.1).

- ``valid``: share of samples RDKit parses (an empty string is invalid);
- ``unique@k``: share of distinct canonical SMILES among the first k valid samples;
- ``novelty``: share of the distinct valid samples that are not in the training set;
- ``IntDiv1``/``IntDiv2``: ``1 - mean_i (mean_j T_ij^p)^(1/p)`` over all pairs of valid
  samples (self-pairs included, as MOSES), T the Tanimoto similarity of Morgan fingerprints
  (radius 2, 1024 bits);
- ``Filters``: share of valid samples passing MOSES' filters (MCF and PAINS alerts, atoms in
  C N S O F Cl Br H, no charge, no ring of 8 or more atoms);
- ``SNN``: mean Tanimoto similarity of each valid sample to its nearest reference molecule;
- ``Frag`` / ``Scaf``: cosine similarity of BRICS-fragment / Bemis-Murcko-scaffold counts
  (scaffolds with at least two rings) of valid samples and reference;
- ``FCD``: Fréchet ChemNet Distance (fcd_torch, its ChemNet weights ship in the wheel).

Reference statistics (fingerprints, fragment and scaffold counts, ChemNet mean/covariance)
take minutes for the 176k MOSES test molecules, so :class:`Reference` computes them once and
saves them to an ``.npz`` that later runs load.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pmtoolkit.core.errors import BadInputError

#: MOSES' medicinal-chemistry filters (moses/metrics/mcf.csv, MIT licence), used with PAINS
MCF_SMARTS = (
    "[#6]=&!@[#6]-[#6]#[#7]", "[#6]=&!@[#6]-[#16](=[#8])=[#8]",
    "[#6]=&!@[#6&!H0]-&!@[#6](=[#8])-&!@[#7]", "[H]C([H])([#6])[F,Cl,Br,I]",
    "[#6]1-[#8]-[#6]-1", "[#6]-[#7]=[#6]=[#8]", "[#6&!H0]=[#8]",
    "[#6](=&!@[#7&!H0])-&!@[#6,#7,#8,#16]", "[#6]1-[#7]-[#6]-1",
    "[#6]~&!@[#7]~&!@[#7]~&!@[#6]", "[#7]=&!@[#7]",
    "[H][#6]-1=[#6]([H])-[#6]=[#6](-*)-[#8]-1", "[H][#6]-1=[#6]([H])-[#6]=[#6](-*)-[#16]-1",
    "[#17,#35,#53]-c(:*):[!#1!#6]:*", "[H][#7]([H])-[#6]-1=[#6]-[#6]=[#6]-[#6]=[#6]-1",
    "[#16]~[#16]", "[#7]~&!@[#7]~&!@[#7]", "[#7]-&!@[#6&!H0&!H1]-&!@[#7]",
    "[#6&!H0](-&!@[#8])-&!@[#8]", "[#35].[#35].[#35]", "[#17].[#17].[#17].[#17]",
    "[#9].[#9].[#9].[#9].[#9].[#9].[#9]",
)
ALLOWED_ATOMS = frozenset({"C", "N", "S", "O", "F", "Cl", "Br", "H"})


# ----------------------------------------------------------------------------- basics

def parse(smiles: Sequence[str]) -> list[Any]:
    """RDKit molecules (None where invalid or empty), quietly."""
    from pmtoolkit.chem.molecules import parse_smiles

    return [parse_smiles(s)[0] if s else None for s in smiles]


def canonical(mols: Sequence[Any]) -> list[str]:
    from rdkit import Chem

    return [Chem.MolToSmiles(m) for m in mols]


#: molecules parsed at a time where a whole set would not fit in memory (an RDKit molecule
#: takes ~10 kB: MOSES' 1.6M training SMILES as molecules would need ~20 GB)
CHUNK = 20_000
FCD_CHUNK = 2_000


def canonical_set(smiles: Sequence[str], chunk: int = CHUNK) -> set[str]:
    """The distinct canonical SMILES of the valid entries, parsed a chunk at a time."""
    from pmtoolkit.chem._rdkit import quiet

    out: set[str] = set()
    with quiet():
        for s in range(0, len(smiles), chunk):
            out.update(canonical([m for m in parse(smiles[s:s + chunk]) if m is not None]))
    return out


def morgan_bits(mols: Sequence[Any]) -> np.ndarray:
    """(n, 1024) uint8 Morgan fingerprints, radius 2 (MOSES' settings)."""
    from rdkit.Chem import rdFingerprintGenerator as G

    gen = G.GetMorganGenerator(radius=2, fpSize=1024)
    out = np.zeros((len(mols), 1024), dtype=np.uint8)
    for i, m in enumerate(mols):
        out[i] = gen.GetFingerprintAsNumPy(m)
    return out


def _tanimoto_blocks(a: np.ndarray, b: np.ndarray, block: int = 4096):
    """Yield (row slice, Tanimoto block of a[rows] vs all of b), by float32 matrix products."""
    bf = b.astype(np.float32)
    nb = bf.sum(axis=1)
    for start in range(0, len(a), block):
        af = a[start:start + block].astype(np.float32)
        inter = af @ bf.T
        union = af.sum(axis=1)[:, None] + nb[None, :] - inter
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.where(union > 0, inter / union, 1.0)
        yield slice(start, start + len(af)), t


def internal_diversity(fps: np.ndarray, p: int = 1) -> float:
    """MOSES IntDiv_p over all pairs (self-pairs included)."""
    if not len(fps):
        return float("nan")
    agg = np.empty(len(fps))
    for rows, t in _tanimoto_blocks(fps, fps):
        agg[rows] = np.mean(t ** p, axis=1) ** (1.0 / p)
    return float(1.0 - agg.mean())


def nearest_similarity(fps: np.ndarray, ref: np.ndarray) -> float:
    """MOSES SNN: mean over samples of the Tanimoto similarity to the nearest reference."""
    if not len(fps) or not len(ref):
        return float("nan")
    best = np.empty(len(fps))
    for rows, t in _tanimoto_blocks(fps, ref):
        best[rows] = t.max(axis=1)
    return float(best.mean())


def fragments(mols: Sequence[Any]) -> Counter:
    """BRICS fragment counts (MOSES ``compute_fragments``)."""
    from rdkit.Chem import BRICS

    out: Counter = Counter()
    for m in mols:
        out.update(BRICS.BRICSDecompose(m))
    return out


def scaffolds(mols: Sequence[Any], min_rings: int = 2) -> Counter:
    """Bemis-Murcko scaffold counts, scaffolds with fewer than ``min_rings`` rings left out."""
    from rdkit import Chem
    from rdkit.Chem.Scaffolds import MurckoScaffold

    out: Counter = Counter()
    for m in mols:
        try:
            core = MurckoScaffold.GetScaffoldForMol(m)
        except (ValueError, RuntimeError):
            continue
        smi = Chem.MolToSmiles(core)
        if smi and core.GetRingInfo().NumRings() >= min_rings:
            out[smi] += 1
    return out


def cosine_similarity(a: Counter, b: Counter) -> float:
    keys = sorted(set(a) | set(b))
    if not keys:
        return float("nan")
    va = np.array([a.get(k, 0) for k in keys], dtype=np.float64)
    vb = np.array([b.get(k, 0) for k in keys], dtype=np.float64)
    den = np.linalg.norm(va) * np.linalg.norm(vb)
    return float(va @ vb / den) if den else float("nan")


def _filter_patterns():
    from rdkit import Chem
    from rdkit.Chem import FilterCatalog

    params = FilterCatalog.FilterCatalogParams()
    params.AddCatalog(FilterCatalog.FilterCatalogParams.FilterCatalogs.PAINS)
    return [Chem.MolFromSmarts(s) for s in MCF_SMARTS], FilterCatalog.FilterCatalog(params)


def passes_filters(mol: Any, patterns=None) -> bool:
    """MOSES ``mol_passes_filters``: ring sizes, charge, allowed atoms, MCF and PAINS."""
    from rdkit import Chem

    mcf, pains = patterns or _filter_patterns()
    if any(len(r) >= 8 for r in mol.GetRingInfo().AtomRings()):
        return False
    if any(a.GetFormalCharge() != 0 for a in mol.GetAtoms()):
        return False
    if any(a.GetSymbol() not in ALLOWED_ATOMS for a in mol.GetAtoms()):
        return False
    h_mol = Chem.AddHs(mol)
    if any(h_mol.HasSubstructMatch(p) for p in mcf) or pains.HasMatch(h_mol):
        return False
    smi = Chem.MolToSmiles(mol)
    return bool(smi) and Chem.MolFromSmiles(smi) is not None


# ----------------------------------------------------------------------------- reference

#: the largest reference cache read (the MOSES test set's is about 25 MB)
MAX_REFERENCE_BYTES = 2 * 2**30


def _check_npz_members(path: str | os.PathLike, limit: int) -> None:
    """Read only the headers of an .npz's arrays: their declared sizes must add up to less
    than ``limit`` bytes (a small compressed file can declare a huge array)."""
    import zipfile

    total = 0
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            with zf.open(info) as fh:
                version = np.lib.format.read_magic(fh)
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0) else
                        np.lib.format.read_array_header_2_0)
                shape, _, dtype = read(fh)
            total += int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if total > limit:
        raise BadInputError(f"'{path}' declares {total / 2**30:,.1f} GiB of arrays, more than a "
                            f"reference cache holds ({limit / 2**30:.0f} GiB at most)")


@dataclass
class Reference:
    """What the metrics need from a reference set (e.g. the MOSES test set)."""

    fps: np.ndarray
    frag: Counter
    scaf: Counter
    fcd_mu: np.ndarray | None
    fcd_sigma: np.ndarray | None
    n: int

    @classmethod
    def compute(cls, smiles: Sequence[str], *, fcd: bool = True) -> Reference:
        from pmtoolkit.chem._rdkit import quiet

        frag: Counter = Counter()
        scaf: Counter = Counter()
        fps, canon = [], []
        for s in range(0, len(smiles), CHUNK):  # a chunk of molecules in memory at a time
            mols = [m for m in parse(smiles[s:s + CHUNK]) if m is not None]
            with quiet():
                frag.update(fragments(mols))
                scaf.update(scaffolds(mols))
            fps.append(morgan_bits(mols))
            canon.extend(canonical(mols))
        mu = sigma = None
        if fcd:
            mu, sigma = chemnet_stats(canon)
        fps_all = np.concatenate(fps) if fps else np.zeros((0, 1024), dtype=np.uint8)
        return cls(fps_all, frag, scaf, mu, sigma, len(canon))

    def save(self, path: str | os.PathLike) -> None:
        from pmtoolkit.core.io import atomic_write

        arrays = {"fps": np.packbits(self.fps, axis=1), "n": np.array(self.n)}
        if self.fcd_mu is not None:
            arrays.update(fcd_mu=self.fcd_mu, fcd_sigma=self.fcd_sigma)
        counts = json.dumps({"frag": self.frag, "scaf": self.scaf})
        with atomic_write(path, "wb") as fh:
            np.savez_compressed(fh, counts=np.frombuffer(counts.encode(), dtype=np.uint8),
                                **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Reference:
        """A reference saved by :meth:`save`. A file that is not one (truncated, corrupt,
        another .npz, arrays of the wrong shape or too large to be one) is a one-line error
        naming it, before any of its arrays is read."""
        import zipfile

        hint = "delete it to compute the reference again"
        try:
            _check_npz_members(path, MAX_REFERENCE_BYTES)
            with np.load(path, allow_pickle=False) as z:
                counts = json.loads(z["counts"].tobytes().decode())
                packed = z["fps"]
                mu, sigma = z.get("fcd_mu"), z.get("fcd_sigma")
                n = int(z["n"])
            frag, scaf = Counter(counts["frag"]), Counter(counts["scaf"])
        except BadInputError as exc:
            raise BadInputError(exc.message, hint=hint) from None
        except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile,
                UnicodeDecodeError) as exc:
            detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else \
                type(exc).__name__
            raise BadInputError(f"'{path}' is not a reference cache written by pmt generate "
                                f"evaluate ({detail})", hint=hint) from None
        if packed.dtype != np.uint8 or packed.ndim != 2 or packed.shape[1] != 128 or \
                (mu is None) != (sigma is None) or (mu is not None and (
                    mu.shape != (512,) or sigma.shape != (512, 512) or
                    not (np.isfinite(mu).all() and np.isfinite(sigma).all()))):
            raise BadInputError(f"'{path}' holds arrays of the wrong shape or values for a "
                                "reference cache", hint=hint)
        fps = np.unpackbits(packed, axis=1)[:, :1024]
        return cls(fps, frag, scaf, mu, sigma, n)

    @classmethod
    def cached(cls, smiles_path: str | os.PathLike, cache: str | os.PathLike, *,
               fcd: bool = True) -> Reference:
        """The reference of a SMILES file, from ``cache`` if it is there (else computed and
        saved there)."""
        import pandas as pd

        cache = Path(cache)
        if cache.exists():
            return cls.load(cache)
        frame = pd.read_csv(smiles_path)
        col = "SMILES" if "SMILES" in frame else frame.columns[0]
        ref = cls.compute(frame[col].astype(str).tolist(), fcd=fcd)
        ref.save(cache)
        return ref


def chemnet_stats(smiles: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of ChemNet's penultimate activations (fcd_torch's network and
    weights; the weights load with torch's weights-only loader)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fcd_torch uses deprecated numpy/scipy aliases
        from fcd_torch import FCD

        fcd = FCD(device="cpu", n_jobs=1, batch_size=512)
    # running sums over chunks: fcd_torch's memory grows with the size of one call (2.3 GB
    # for 10k SMILES, 18 GB for the 176k of the MOSES test set); 2k at a time stays flat
    n, total, outer = 0, None, None
    for s in range(0, len(smiles), FCD_CHUNK):
        act = fcd.get_predictions(list(smiles[s:s + FCD_CHUNK])).astype(np.float64)
        if total is None:
            total, outer = act.sum(axis=0), act.T @ act
        else:
            total += act.sum(axis=0)
            outer += act.T @ act
        n += len(act)
    if n < 2:
        raise BadInputError("the Frechet ChemNet distance needs at least two molecules")
    mu = total / n
    return mu, (outer - n * np.outer(mu, mu)) / (n - 1)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
    """||mu1 - mu2||² + Tr(S1 + S2 - 2 (S1 S2)^½) (the FID/FCD formula)."""
    from scipy import linalg

    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():  # near-singular product: regularise as FID does
        eps = np.eye(len(mu1)) * 1e-6
        covmean = linalg.sqrtm((sigma1 + eps) @ (sigma2 + eps))
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


# ----------------------------------------------------------------------------- all together

def generation_metrics(samples: Sequence[str], *, train: set[str] | None = None,
                       reference: Reference | None = None, ks: Sequence[int] = (1000, 10000),
                       fcd: bool = True, mols: Sequence[Any] | None = None
                       ) -> dict[str, float]:
    """MOSES metrics of ``samples``. ``train``: canonical training SMILES (for novelty);
    ``reference``: test-set statistics (for SNN, Frag, Scaf, FCD); ``mols``: the samples
    already parsed with :func:`parse` (None where invalid)."""
    from pmtoolkit.chem._rdkit import quiet

    mols_all = parse(samples) if mols is None else mols
    mols = [m for m in mols_all if m is not None]
    out: dict[str, float] = {"valid": len(mols) / max(1, len(samples))}
    canon = canonical(mols)
    for k in ks:
        first = canon[:k]
        out[f"unique@{k}"] = len(set(first)) / len(first) if first else float("nan")
    distinct = set(canon)
    if train is not None:
        out["novelty"] = len(distinct - train) / len(distinct) if distinct else float("nan")
    fps = morgan_bits(mols)
    out["IntDiv1"] = internal_diversity(fps, 1)
    out["IntDiv2"] = internal_diversity(fps, 2)
    patterns = _filter_patterns()
    with quiet():
        out["Filters"] = float(np.mean([passes_filters(m, patterns) for m in mols])) \
            if mols else float("nan")
    if reference is not None:
        out["SNN"] = nearest_similarity(fps, reference.fps)
        with quiet():
            out["Frag"] = cosine_similarity(fragments(mols), reference.frag)
            out["Scaf"] = cosine_similarity(scaffolds(mols), reference.scaf)
        if fcd and reference.fcd_mu is not None and len(mols) > 1:
            mu, sigma = chemnet_stats(canon)
            out["FCD"] = frechet_distance(reference.fcd_mu, reference.fcd_sigma, mu, sigma)
    return out
