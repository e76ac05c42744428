"""Attribution for sequence models: in-silico saturation mutagenesis (ISM) and gradient x input.

ISM scores every single-base substitution over a region. A substitution only changes the
activations inside its receptive field, so for convolution + pool networks (``basset``) the
fast path keeps the reference sequence's activations of every stage and recomputes, for each
mutation, only the slice of each stage the mutation reaches (the idea of fastISM, Sasse et
al. 2021, and Yuzu): the other positions are copied from the reference. The result equals
scoring each mutated sequence in full (``method="full"``, the reference implementation; tested
to float precision).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pmtoolkit.core.errors import BadInputError

BASES = "ACGT"


@dataclass
class ISMResult:
    """``outputs[i, b]``: the model outputs with base ``b`` (A, C, G, T) at ``positions[i]``
    (0-based in the window); the row of the reference base holds the reference output."""

    positions: np.ndarray          # (P,)
    reference_bases: np.ndarray    # (P,) codes 0-3, or 4 for N
    outputs: np.ndarray            # (P, 4, T)
    reference_output: np.ndarray   # (T,), or (P, T) when each position has its own window
    targets: list[str]

    def effects(self) -> np.ndarray:
        """``outputs - reference_output``: (P, 4, T), zero at the reference base."""
        ref = self.reference_output
        return self.outputs - (ref[:, None, :] if ref.ndim == 2 else ref)


def _region(model, codes: np.ndarray, start: int, end: int | None) -> np.ndarray:
    end = codes.shape[0] if end is None else end
    if not 0 <= start < end <= codes.shape[0]:
        raise BadInputError(f"ISM region [{start}, {end}) is outside the window of "
                            f"{codes.shape[0]} bases")
    return np.arange(start, end)


def _mutants(codes: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(position, base) of every substitution: 3 per position (4 at an N)."""
    pos, base = [], []
    for p in positions:
        for b in range(4):
            if b != codes[p]:
                pos.append(p)
                base.append(b)
    return np.asarray(pos, dtype=np.int64), np.asarray(base, dtype=np.int64)


def _full_logits(net, x_ref, pos, base, batch_size: int):
    """Logits of every mutated sequence by a full forward pass (the reference method)."""
    import torch

    out = []
    for s in range(0, len(pos), batch_size):
        p = torch.from_numpy(pos[s:s + batch_size])
        b = torch.from_numpy(base[s:s + batch_size])
        x = x_ref.expand(len(p), -1, -1).clone()
        x[torch.arange(len(p)), :, p] = 0.0
        x[torch.arange(len(p)), b, p] = 1.0
        out.append(net(x))
    return torch.cat(out) if out else torch.zeros(0, 1)


class _FastISM:
    """Reference activations of a :class:`~pmtoolkit.genomics.networks.BassetNet` and the
    slice of each stage a substitution reaches.

    Only the changed slice of each stage travels from stage to stage (``patch``, with the
    position of its first column): the next stage's input window is gathered from the
    zero-padded reference activations and the patch is pasted into it, so no mutant ever
    holds a whole activation map until the flattened dense layer."""

    def __init__(self, net, x_ref):
        import torch
        from torch.nn import functional as F

        self.net = net
        acts = [x_ref[0]]  # input of each stage, (C, L)
        with torch.inference_mode():
            a = x_ref
            for s in net.stages:
                a = s(a)
                acts.append(a[0])
        self.acts = acts
        self.plan = self._plan()
        # each stage's input, zero-padded by more than any window reaches beyond it, and
        # laid out (L, C) so that gathering positions is a row gather
        # the input width each stage's recomputed slice reads
        self.w_in = [w * s.pool + s.kernel - 1 for w, s in zip(self.plan, net.stages)]
        self.margins, self.padded = [], []
        for si, s in enumerate(net.stages):
            margin = self.w_in[si] + s.kernel + s.pool
            self.margins.append(margin)
            self.padded.append(F.pad(acts[si], (margin, margin)).t().contiguous())

    def _plan(self):
        """Per stage: width of the recomputed output slice; offsets derive per mutation."""
        plan, width = [], 1  # the affected interval of the input: one base
        for s in self.net.stages:
            k, p = s.kernel, s.pool
            # affected conv outputs span width + k - 1; pooled, at most this many windows
            span = width + k - 1
            w_out = -(-(span - 1) // p) + 1 if p > 1 else span
            plan.append(w_out)
            width = w_out
        return plan

    @staticmethod
    def _paste(target, patch, offset, valid):
        """``target[i, :, offset[i] + t] = patch[i, :, t]`` where ``valid[i, t]``."""
        import torch

        n, _, w = patch.shape
        cols = offset.unsqueeze(1) + torch.arange(w).unsqueeze(0)
        rows = torch.arange(n).unsqueeze(1).expand(-1, w)
        target.permute(0, 2, 1)[rows[valid], cols[valid]] = patch.permute(0, 2, 1)[valid]

    def logits(self, pos: np.ndarray, base: np.ndarray):
        import torch
        from torch.nn import functional as F

        n = len(pos)
        lo = torch.from_numpy(pos)  # first input position the patch covers
        patch = F.one_hot(torch.from_numpy(base), 4).to(self.acts[0].dtype).unsqueeze(2)
        valid = torch.ones(n, 1, dtype=torch.bool)  # patch columns inside the stage's input
        for si, s in enumerate(self.net.stages):
            k, p, (pl, _) = s.kernel, s.pool, s.pad
            w_out = self.plan[si]
            # first affected pooled output, and the input window its w_out windows read
            m_lo = torch.div(lo - (k - 1) + pl, p, rounding_mode="floor")
            q_lo = m_lo * p - pl
            idx = (q_lo + self.margins[si]).unsqueeze(1) + torch.arange(self.w_in[si])
            window = self.padded[si][idx].permute(0, 2, 1).contiguous()  # (n, C, w_in)
            self._paste(window, patch, lo - q_lo, valid)
            patch = s.body(window)[..., :w_out]  # (n, C_out, w_out)
            lo = m_lo
            cols = lo.unsqueeze(1) + torch.arange(w_out)
            valid = (cols >= 0) & (cols < self.acts[si + 1].shape[-1])
        final = self.acts[-1].expand(n, -1, -1).clone()
        self._paste(final, patch, lo, valid)
        return self.net.head(self.net.fc(final.flatten(1)))


def ism(model, sequence: str, *, start: int = 0, end: int | None = None,
        strands: str = "both", method: str = "auto", batch_size: int = 1024) -> ISMResult:
    """Outputs of every single-base substitution of ``sequence`` (cut or N-padded to the
    model's window) at window positions ``[start, end)``.

    ``method``: ``fast`` (basset networks: recompute only what a substitution reaches),
    ``full`` (a forward pass per mutated sequence), ``auto`` (fast where possible)."""
    import torch

    from pmtoolkit.genomics.data import encode_sequences
    from pmtoolkit.genomics.model import one_hot_codes
    from pmtoolkit.genomics.networks import BassetNet

    if method not in ("auto", "fast", "full"):
        raise BadInputError(f"unknown ISM method {method!r}", hint="auto, fast or full")
    if strands not in ("both", "forward"):
        raise BadInputError(f"strands must be 'both' or 'forward', not {strands!r}")
    codes, _ = encode_sequences([sequence], model.window)
    codes = codes[0]
    positions = _region(model, codes, start, end)
    pos, base = _mutants(codes, positions)
    net = model.network.eval()
    fast = isinstance(net, BassetNet) if method == "auto" else method == "fast"
    if fast and not isinstance(net, BassetNet):
        raise BadInputError("fast ISM needs a basset network; use method='full'")
    length = model.window

    def run(c: np.ndarray, p: np.ndarray, b: np.ndarray):
        x_ref = one_hot_codes(c[None])
        with torch.inference_mode():
            ref = net(x_ref)[0]
            if fast:
                engine = _FastISM(net, x_ref)
                parts = [engine.logits(p[s:s + batch_size], b[s:s + batch_size])
                         for s in range(0, len(p), batch_size)]
                mut = torch.cat(parts) if parts else torch.zeros(0, len(model.targets))
            else:
                mut = _full_logits(net, x_ref, p, b, batch_size)
        return ref.float().numpy(), mut.float().numpy()

    ref_logit, mut_logit = run(codes, pos, base)
    ref_out = model.outputs(ref_logit[None].astype(np.float64))[0]
    mut_out = model.outputs(mut_logit.astype(np.float64))
    if strands == "both":
        from pmtoolkit.genomics.model import reverse_complement_codes

        rc = np.ascontiguousarray(reverse_complement_codes(codes))
        ref_rc, mut_rc = run(rc, length - 1 - pos, 3 - base)
        ref_out = (ref_out + model.outputs(ref_rc[None].astype(np.float64))[0]) / 2
        mut_out = (mut_out + model.outputs(mut_rc.astype(np.float64))) / 2
    outputs = np.repeat(np.repeat(ref_out[None, None], 4, axis=1), len(positions), axis=0)
    row = np.searchsorted(positions, pos)
    outputs[row, base] = mut_out
    return ISMResult(positions, codes[positions], outputs, ref_out, list(model.targets))


def centred_ism(model, sequence: str, *, start: int = 0, end: int | None = None,
                batch_size: int = 512) -> ISMResult:
    """Every single-base substitution of ``sequence[start:end]``, each scored as a variant:
    the model's window centred on the substituted base (``N`` beyond the sequence), ALT
    against REF. For models that score a window's centre (the motif models), where one
    window per region does not apply; ``reference_output`` is then per position."""
    from pmtoolkit.genomics.sequence import codes as to_codes

    seq = to_codes("".join(sequence.split()).upper())
    end = len(seq) if end is None else end
    if not 0 <= start < end <= len(seq):
        raise BadInputError(f"ISM region [{start}, {end}) is outside the sequence of "
                            f"{len(seq)} bases")
    half = model.window // 2
    padded = np.concatenate([np.full(half, 4, np.uint8), seq, np.full(half, 4, np.uint8)])
    positions = np.arange(start, end)
    windows = np.lib.stride_tricks.sliding_window_view(padded, model.window)[positions]
    variants = np.repeat(windows[:, None, :], 4, axis=1).copy()  # (P, 4, window)
    variants[:, :, half] = np.arange(4)[None, :]
    out = model.predict_codes(np.concatenate([windows, variants.reshape(-1, model.window)]),
                              batch_size=batch_size)
    ref_out = out[:len(positions)]
    outputs = out[len(positions):].reshape(len(positions), 4, -1)
    return ISMResult(positions, seq[positions], outputs, ref_out, list(model.targets))


def gradient_x_input(model, sequence: str, *, target: int | str = 0,
                     strands: str = "both") -> np.ndarray:
    """Gradient of one target's logit with respect to the one-hot input, times the input:
    ``(window,)`` attribution per position (the reverse strand's mapped back and averaged)."""

    from pmtoolkit.genomics.data import encode_sequences
    from pmtoolkit.genomics.model import one_hot_codes

    k = model.targets.index(target) if isinstance(target, str) else int(target)
    if not 0 <= k < len(model.targets):
        raise BadInputError(f"target {target!r} is not one of the model's "
                            f"{len(model.targets)} targets")
    codes, _ = encode_sequences([sequence], model.window)
    net = model.network.eval()
    x = one_hot_codes(codes)
    xs = [x, x.flip(1).flip(2)] if strands == "both" else [x]
    scores = []
    for i, xi in enumerate(xs):
        xi = xi.clone().requires_grad_(True)
        net(xi)[0, k].backward()
        attr = (xi.grad * xi).sum(1)[0].detach().numpy()
        scores.append(attr[::-1] if i == 1 else attr)
    return np.mean(scores, axis=0)
