import numpy as np
import pytest
import torch
from scipy import stats

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.model import load_model
from pmtoolkit.expression.classifier import ExpressionClassifier, fit_classifier
from pmtoolkit.expression.config import ExpressionClassifierConfig, VAEConfig
from pmtoolkit.expression.vae import ExpressionVAE, default_epochs, fit_vae, nb_log_likelihood
from tests.expression.conftest import simulate


def _knn_purity(Z, labels, k=10):
    from sklearn.neighbors import NearestNeighbors

    idx = NearestNeighbors(n_neighbors=k + 1).fit(Z).kneighbors(Z, return_distance=False)[:, 1:]
    return float((labels[idx] == labels[:, None]).mean())


def test_nb_log_likelihood_matches_scipy():
    x = torch.tensor([[0.0, 3.0, 10.0]])
    mean = torch.tensor([[1.5, 2.0, 8.0]])
    theta = torch.tensor([0.7, 2.0, 5.0])
    p = theta / (theta + mean)
    expected = stats.nbinom.logpmf(x.numpy(), theta.numpy(), p.numpy()).sum()
    assert float(nb_log_likelihood(x, mean, theta)) == pytest.approx(expected, rel=1e-5)


def test_default_epochs_follow_scvi_rule():
    assert default_epochs(700) == 400 and default_epochs(100_000) == 80


def test_vae_separates_populations_and_round_trips(tmp_path):
    adata = simulate(n_per_group=60, n_genes=80, groups=3)
    model = fit_vae(adata, VAEConfig(epochs=60, n_top_genes=None, device="cpu", n_latent=4))
    Z = model.latent(adata)
    assert Z.shape == (180, 4)
    assert _knn_purity(Z, adata.obs["group"].to_numpy()) > 0.9
    model.save(tmp_path / "vae.safetensors")
    again = load_model(tmp_path / "vae.safetensors")
    assert isinstance(again, ExpressionVAE) and again.genes == model.genes
    np.testing.assert_allclose(again.latent(adata), Z, atol=1e-5)


def test_vae_batches_and_unknown_batch():
    adata = simulate(n_per_group=40, n_genes=60, groups=2)
    adata.obs["batch"] = np.where(np.arange(adata.n_obs) % 2, "b1", "b2")
    model = fit_vae(adata, VAEConfig(epochs=3, n_top_genes=30, device="cpu"), batch_key="batch")
    assert model.batches == ["b1", "b2"] and len(model.genes) == 30
    adata.obs["batch"] = "b3"
    with pytest.raises(BadInputError, match="b3 were not seen in training"):
        model.latent(adata)


def test_vae_rejects_normalised_input():
    adata = simulate(n_per_group=10, n_genes=20, groups=2)
    adata.X = adata.X * 0.3
    with pytest.raises(BadInputError, match="non-integer"):
        fit_vae(adata, VAEConfig(epochs=1, device="cpu"))


def test_classifier_learns_planted_types_and_attributes_their_markers(tmp_path):
    both = simulate(n_per_group=70, n_genes=80, groups=3)
    held_out = np.arange(both.n_obs) % 7 == 0
    adata, query = both[~held_out].copy(), both[held_out].copy()
    model = fit_classifier(adata, "group", ExpressionClassifierConfig(epochs=40, n_top_genes=None,
                                                            device="cpu", patience=0))
    pred = model.predict(query)
    assert (pred["label"].to_numpy() == query.obs["group"].astype(str).to_numpy()).mean() > 0.95
    model.annotate(query, key_added="lab")
    assert {"lab", "lab_confidence"} <= set(query.obs) and "lab_probabilities" in query.obsm
    one = query[query.obs["group"] == "type1"].copy()
    attr = model.attributions(one, target="type1")
    top = attr.abs().mean().sort_values(ascending=False).index[:10]
    assert len(set(top) & {f"G{i}" for i in range(10, 20)}) >= 6
    # integrated gradients are complete: each row sums to logit(x) - logit(0)
    x = model._features(one)
    with torch.no_grad():
        net = model.network.eval()
        k = model.classes.index("type1")
        diff = (net(torch.from_numpy(x.toarray()))[:, k]
                - net(torch.zeros(1, len(model.genes)))[:, k]).numpy()
    np.testing.assert_allclose(attr.sum(axis=1).to_numpy(), diff, rtol=0.05, atol=0.05)
    model.save(tmp_path / "c.safetensors")
    again = load_model(tmp_path / "c.safetensors")
    assert isinstance(again, ExpressionClassifier)
    np.testing.assert_allclose(again.predict_proba(query).to_numpy(),
                               model.predict_proba(query).to_numpy(), atol=1e-6)


def test_classifier_gene_alignment():
    adata = simulate(n_per_group=30, n_genes=60, groups=2)
    model = fit_classifier(adata, "group", ExpressionClassifierConfig(epochs=2, n_top_genes=None,
                                                            device="cpu"))
    few = adata[:, 3:].copy()  # 3 of 60 genes missing: 5%, counted as zero
    assert len(model.predict(few)) == adata.n_obs
    many = adata[:, 20:].copy()
    with pytest.raises(BadInputError, match="20 of the classifier model's 60 genes are missing"):
        model.predict(many)
    with pytest.raises(BadInputError, match="no obs column 'celltype'"):
        fit_classifier(adata, "celltype")


def test_shipped_pbmc68k_classifier_pinned():
    import anndata as ad

    from pmtoolkit.core import shipped
    from pmtoolkit.expression.classify import load

    model = load("pbmc68k")
    adata = ad.read_h5ad(shipped.path("pbmc68k_counts", "dataset"))
    pred = model.predict(adata)
    # trained on these cells: agreement with the labels it learnt, and its CV in metadata
    assert (pred["label"].to_numpy() == adata.obs["bulk_labels"].astype(str)).mean() > 0.85
    assert model.metadata["metrics"]["cv_5fold"]["accuracy"] > 0.75
    assert pred["label"].iloc[:3].tolist() == ["CD14+ Monocyte", "Dendritic", "CD56+ NK"]


def test_configs_built_in_python_are_range_checked():
    from pmtoolkit.core.errors import ConfigError

    adata = simulate(n_per_group=10, n_genes=30)
    with pytest.raises(ConfigError, match="VAE config: n-hidden: 0 is out of range"):
        fit_vae(adata, VAEConfig(n_hidden=0))
    with pytest.raises(ConfigError, match="classifier config: dropout: nan is not a finite"):
        fit_classifier(adata, "group", ExpressionClassifierConfig(dropout=float("nan")))


def test_classifier_refuses_nan_and_inf_expression():
    adata = simulate(n_per_group=10, n_genes=30)
    adata.X = adata.X.toarray()
    adata.X[4, 7] = np.nan
    with pytest.raises(BadInputError, match=r"X: nan is not a finite number \(cell 'cell4'"):
        fit_classifier(adata, "group", ExpressionClassifierConfig(epochs=1))
    adata.X[4, 7] = 1e4
    adata.layers["counts"] = adata.X.copy()
    adata.layers["counts"][0, 0] = np.inf
    with pytest.raises(BadInputError, match="inf is not a finite number"):
        ExpressionClassifier.untrained(ExpressionClassifierConfig(),
                                       {"genes": list(adata.var_names),
                                        "classes": ["a", "b"]}).predict_proba(
            adata, layer="counts")
