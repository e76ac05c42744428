"""The one model contract, and the base classes that give every model ``save``/``load``.

Each domain model is a :class:`Model` with a config dataclass (``Config``), ``predict``, and
the two halves of persistence: ``state_tensors()`` (what to save) and ``from_checkpoint()``
(how to rebuild). :func:`load_model` reads any saved pmtoolkit model: it finds the class from
the metadata (only classes inside pmtoolkit, so a file cannot make us import arbitrary code),
rebuilds the config from plain JSON values and loads the weights, never unpickling.
"""
from __future__ import annotations

import os
from dataclasses import is_dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pmtoolkit.core import config as _config
from pmtoolkit.core.checkpoint import Checkpoint, load_checkpoint, read_metadata, save_checkpoint
from pmtoolkit.core.errors import BadInputError, PmtError
from pmtoolkit.core.registry import import_object

if TYPE_CHECKING:
    import torch

#: Saved models may only name classes from these packages, so a file cannot make us import
#: arbitrary code.
TRUSTED_PACKAGES: tuple[str, ...] = ("pmtoolkit.",)
#: Model classes that moved since files naming them were saved: old path -> new path.
MOVED_CLASSES: dict[str, str] = {
    "pmtoolkit.fusion.response:ResponseModel": "pmtoolkit.response.model:ResponseModel",
}


class Model:
    """Base of every trained pmtoolkit model."""

    Config: ClassVar[type]
    #: metadata of the file the model was loaded from (metrics, training-data sha256, ...)
    metadata: dict[str, Any]

    def __init__(self, config: Any):
        if not is_dataclass(config):
            raise TypeError(f"{type(self).__name__} needs a config dataclass, got {config!r}")
        _config.check_ranges(config, source=f"{type(self).__name__} config")
        self.config = config
        self.metadata = {}

    @classmethod
    def class_path(cls) -> str:
        return f"{cls.__module__}:{cls.__qualname__}"

    # -- persistence -------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def extra_metadata(self) -> dict[str, Any]:
        """Plain JSON values the model needs to rebuild itself (vocabulary, class names)."""
        return {}

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> Model:
        raise NotImplementedError

    def save(self, path: str | os.PathLike, *, metrics: dict[str, Any] | None = None,
             training_data_sha256: str | None = None, half: bool = False) -> dict[str, Any]:
        """Write the model to ``path`` (one safetensors file with its metadata), atomically.

        ``half`` stores floating-point weights as float16 (half the file, for shipped models;
        they are widened back to float32 on loading, and the model computes in float32)."""
        tensors = self.state_tensors()
        if half:
            tensors = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
        meta = save_checkpoint(
            path, tensors, model_class=self.class_path(),
            config=_config.to_dict(self.config),
            metrics=metrics if metrics is not None else self.metadata.get("metrics"),
            training_data_sha256=training_data_sha256
            or self.metadata.get("training_data_sha256"),
            extra=self.extra_metadata(),
        )
        self.metadata = meta
        return meta

    @classmethod
    def load(cls, name_or_path: str | os.PathLike, *, map_location: str = "cpu") -> Model:
        """A saved model file of this class, or a shipped model of it by name (as the
        domains' ``load``, through :func:`load_named`)."""
        return load_named(name_or_path, shipped_names=shipped_models_of(cls), model_class=cls,
                          what=cls.__name__, map_location=map_location)


class TorchModel(Model):
    """A model whose weights are one ``torch.nn.Module``: subclasses define ``Config`` and
    ``build_network(config, extra)``, and get persistence for free."""

    def __init__(self, config: Any, network: torch.nn.Module | None = None):
        super().__init__(config)
        self.network = network if network is not None else self.build_network(config, {})

    @classmethod
    def build_network(cls, config: Any, extra: dict[str, Any]) -> torch.nn.Module:
        raise NotImplementedError

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return dict(self.network.state_dict())

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> TorchModel:
        config = _config.from_mapping(cls.Config, checkpoint.config, source="saved model config")
        extra = checkpoint.metadata.get("extra", {})
        check_shapes(lambda: cls.untrained(config, extra).network, checkpoint.tensors, cls.__name__)
        model = cls.untrained(config, extra)
        try:
            model.network.load_state_dict(checkpoint.tensors, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise BadInputError(f"saved weights do not fit {cls.__name__}: {first}") from None
        model.metadata = checkpoint.metadata
        return model

    @classmethod
    def untrained(cls, config: Any, extra: dict[str, Any]) -> TorchModel:
        """An untrained instance for ``config`` and the saved ``extra`` values; override when
        the constructor takes more than the config and the network (e.g. a vocabulary)."""
        return cls(config, cls.build_network(config, extra))


def check_shapes(build, tensors: dict[str, torch.Tensor], what: str) -> None:
    """Refuse saved weights that do not fit the network ``build()`` makes from the saved config,
    before allocating it: the network is built on PyTorch's meta device (shapes, no memory), so
    a config edited to absurd sizes fails here and not after trying to allocate tens of GB."""
    import torch

    try:
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in build().state_dict().items()}
    except (RuntimeError, NotImplementedError, TypeError, ValueError):
        return  # a network that cannot be built on the meta device is checked on loading
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != got:
        missing = sorted(set(expected) - set(got))
        unexpected = sorted(set(got) - set(expected))
        wrong = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
        first = (f"missing {missing[0]!r}" if missing else f"unexpected {unexpected[0]!r}"
                 if unexpected else f"{wrong[0]!r} is {got[wrong[0]]}, the config needs "
                 f"{expected[wrong[0]]}")
        raise BadInputError(f"saved weights do not fit {what} built from the saved config: "
                            f"{first}", hint="the file is corrupted or was modified")


#: The most weights a network may have: far above any model pmtoolkit trains (the shipped ones
#: have under 2 million), far below what a 24 GB machine can hold with its optimizer state.
MAX_PARAMETERS = 200_000_000


def check_parameters(build, what: str, hint: str) -> None:
    """Refuse a network ``build()`` makes with more than :data:`MAX_PARAMETERS`, before
    allocating it: built on PyTorch's meta device (shapes, no memory) and counted. Settings
    that are each within range can multiply into tens of billions of weights."""
    import torch

    with torch.device("meta"):
        n = sum(p.numel() for p in build().parameters())
    if n > MAX_PARAMETERS:
        raise BadInputError(f"{what} of these sizes has {n:,} parameters, more than "
                            f"{MAX_PARAMETERS:,}", hint=hint)


def check_finite(checkpoint: Checkpoint, path: str | os.PathLike) -> None:
    """Refuse weights holding NaN or infinities: such a model predicts nothing usable."""
    import torch

    for name, t in checkpoint.tensors.items():
        if t.is_floating_point() and t.numel() and not bool(torch.isfinite(t).all()):
            raise BadInputError(f"weights in '{path}' contain NaN or infinite values "
                                f"({name!r})", hint="the model diverged in training, or the "
                                "file was modified")


def load_model(path: str | os.PathLike, *, map_location: str = "cpu",
               verified: bool = False) -> Model:
    """Load any saved pmtoolkit model, whatever its class. ``verified``: the file's sha256 was
    checked already (shipped models, against data/MANIFEST)."""
    meta = read_metadata(path, verified=verified)
    class_path = str(meta.get("model_class", ""))
    class_path = MOVED_CLASSES.get(class_path, class_path)
    if not class_path.startswith(TRUSTED_PACKAGES):
        raise BadInputError(f"'{path}' names model class {class_path!r}, which is not part of "
                            "pmtoolkit; refusing to import it")
    try:
        cls = import_object(class_path)
    except (ImportError, AttributeError):
        raise BadInputError(f"'{path}' needs model class {class_path!r}, which this pmtoolkit "
                            f"({meta.get('pmtoolkit_version')} saved it) does not have",
                            hint="upgrade pmtoolkit") from None
    if not (isinstance(cls, type) and issubclass(cls, Model)):
        raise BadInputError(f"'{path}' names {class_path!r}, which is not a pmtoolkit model")
    checkpoint = load_checkpoint(path, map_location=map_location, verified=verified)
    check_finite(checkpoint, path)
    return cls.from_checkpoint(checkpoint)


def shipped_models_of(cls: type[Model]) -> tuple[str, ...]:
    """The names of the shipped models (data/MANIFEST) that are ``cls`` instances, read from
    each file's metadata (its header only)."""
    from pmtoolkit.core import shipped

    names = []
    for e in shipped.manifest("model"):
        try:
            class_path = str(read_metadata(e.file, verified=True).get("model_class", ""))
            if class_path.startswith(TRUSTED_PACKAGES) and issubclass(import_object(class_path),
                                                                      cls):
                names.append(e.name)
        except (PmtError, ImportError, AttributeError, TypeError):
            continue  # a missing or damaged file is reported when it is loaded by name
    return tuple(names)


def load_named(name_or_path: str | os.PathLike, *, shipped_names: tuple[str, ...],
               model_class: type[Model] | tuple[type[Model], ...], what: str,
               map_location: str = "cpu") -> Model:
    """A saved model file, or a shipped model by the name users type (one of
    ``shipped_names`` present in data/MANIFEST), of ``model_class`` (a class or a tuple of
    classes); anything else is a one-line error. A file of that name wins over a shipped
    model; a folder of that name does not (``mpra/`` in the working directory must not hide
    the shipped ``mpra``)."""
    from pathlib import Path

    from pmtoolkit.core import shipped
    from pmtoolkit.core.errors import unknown_name

    p = Path(name_or_path)
    verified = False
    if not p.is_file():
        names = [e.name for e in shipped.manifest("model") if e.name in shipped_names]
        if str(name_or_path) not in names:
            if p.is_dir():
                raise BadInputError(f"model path '{p}' is a directory, expected a model file")
            if p.suffix or os.sep in str(name_or_path):
                raise BadInputError(f"model file '{p}' does not exist")
            raise unknown_name(what, str(name_or_path), names)
        p, verified = shipped.path(str(name_or_path), "model"), True
    model = load_model(p, verified=verified, map_location=map_location)
    if not isinstance(model, model_class):
        raise BadInputError(f"'{p}' is a {type(model).__name__}, not a {what}")
    return model

