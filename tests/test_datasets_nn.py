"""Datasets need no download and have the advertised shapes and scales; the MLP contract."""

import pytest
import torch

from interpolants import MLP, GaussianMixture
from interpolants.data import TOY_DATASETS, EightGaussians, GaussianMixtureData, load_digits
from interpolants.nn import SinusoidalTimeEmbedding, TwoHeadMLP, drop_labels


@pytest.mark.parametrize("name", sorted(TOY_DATASETS))
def test_toys_are_seeded_2d_and_of_unit_scale(name: str) -> None:
    ds = TOY_DATASETS[name]()
    a = ds.sample(4000, torch.Generator().manual_seed(0))
    b = ds.sample(4000, torch.Generator().manual_seed(0))
    assert a.shape == (4000, 2) and a.dtype == torch.float32 and torch.isfinite(a).all()
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    # O(1) spread suits a N(0, I) base: per-coordinate std between 0.3 and 3.
    std = a.std(0)
    assert torch.all((std > 0.3) & (std < 3.0)), std


def test_eight_gaussians_matches_its_exact_mixture() -> None:
    ds = EightGaussians()
    x = ds.sample(20000, torch.Generator().manual_seed(1)).double()
    mix = ds.as_mixture()
    # Mean 0 and covariance (r²/2 + σ²) I by symmetry; sampling error ~ 1/√n ≈ 0.007 relative.
    torch.testing.assert_close(x.mean(0), torch.zeros(2, dtype=torch.float64), atol=0.05, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), mix.covariance(), rtol=0.03, atol=0.03)


def test_gaussian_mixture_data_any_dimension() -> None:
    data = GaussianMixtureData(GaussianMixture.standard_normal(5, dtype=torch.float64))
    assert data.sample(7).shape == (7, 5) and data.sample(7).dtype == torch.float32


def test_digits_fixed_split_dequantised_and_scaled() -> None:
    d1 = load_digits(torch.Generator().manual_seed(0))
    d2 = load_digits(torch.Generator().manual_seed(1))
    assert d1.train.shape == (1497, 64) and d1.test.shape == (300, 64)
    assert d1.train.min() >= -1 and d1.train.max() < 1
    # The split is fixed; only the dequantisation noise depends on the generator.
    torch.testing.assert_close(d1.test_labels, d2.test_labels, rtol=0, atol=0)
    levels1 = torch.floor((d1.test + 1) * 17 / 2)
    levels2 = torch.floor((d2.test + 1) * 17 / 2)
    torch.testing.assert_close(levels1, levels2, rtol=0, atol=0)
    assert not torch.equal(d1.test, d2.test)


def test_mlp_contract_and_conditioning() -> None:
    net = MLP(3, hidden=16, depth=2, num_classes=4)
    t, x = torch.rand(6), torch.randn(6, 3)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    assert net(t, x).shape == (6, 3)
    assert not torch.allclose(net(t, x, condition=y), net(t, x))
    # Without labels the conditional net uses the null class (index num_classes).
    torch.testing.assert_close(net(t, x), net(t, x, condition=torch.full((6,), 4)))
    # A scalar time broadcasts.
    torch.testing.assert_close(net(torch.tensor(0.3), x), net(torch.full((6,), 0.3), x))
    torch.testing.assert_close(net(torch.tensor(0.3).expand(6), x), net(torch.full((6,), 0.3), x))
    with pytest.raises(ValueError, match="num_classes"):
        MLP(3)(t, x, condition=y)
    # The split first layer W₁ˣx + (W₁ᵉe + b₁) is the layer stack applied to [x, e].
    exact = MLP(3, hidden=16, depth=2, num_classes=4).double()
    xd = x.double()
    for td in (t.double(), torch.tensor(0.3, dtype=torch.float64)):
        for cond in (None, y):
            torch.testing.assert_close(
                exact(td, xd, cond), exact.net(exact.features(td, xd, cond)), atol=1e-13, rtol=0
            )
    two = TwoHeadMLP(3, hidden=16, depth=2).double()
    heads = two.trunk.net(two.trunk.features(t.double(), xd))
    torch.testing.assert_close(torch.cat(two(t.double(), xd), 1), heads, atol=1e-13, rtol=0)
    double = MLP(2, hidden=8, depth=1).double()
    assert (
        double(torch.rand(2, dtype=torch.float64), torch.randn(2, 2, dtype=torch.float64)).dtype
        == torch.float64
    )


def test_time_embedding_and_label_dropout() -> None:
    emb = SinusoidalTimeEmbedding(8)
    e = emb(torch.tensor([0.0, 0.5]))
    assert e.shape == (2, 8)
    torch.testing.assert_close(e[0], torch.tensor([0.0] * 4 + [1.0] * 4))
    labels = torch.zeros(10000, dtype=torch.long)
    dropped = drop_labels(labels, 9, 0.3, torch.Generator().manual_seed(0))
    frac = float((dropped == 9).float().mean())
    assert abs(frac - 0.3) < 5 * (0.3 * 0.7 / 10000) ** 0.5  # 5 binomial standard errors
    with pytest.raises(ValueError, match="dim must be an even"):
        SinusoidalTimeEmbedding(7)


def test_mlp_context_conditioning() -> None:
    """A float context ξ (a data-dependent coupling's condition) enters through a linear
    projection; labels and context together come as the pair (labels, ξ)."""
    torch.manual_seed(0)
    t, x = torch.rand(5), torch.randn(5, 2)
    mask = torch.tensor([[1.0, 0.0]] * 3 + [[0.0, 1.0]] * 2)
    net = MLP(2, hidden=16, depth=2, context_dim=2)
    out = net(t, x, mask)
    assert out.shape == (5, 2)
    assert not torch.allclose(out, net(t, x, 1 - mask))  # the context matters
    # the output of a sample depends on its own context row only
    torch.testing.assert_close(net(t[:3], x[:3], mask[:3]), out[:3])
    # exact divergence with a context, against autograd
    _, div = net.forward_and_divergence(t, x, mask)
    jac = torch.func.vmap(
        torch.func.jacrev(lambda ti, xi, ci: net(ti[None], xi[None], ci[None])[0], 1)
    )(t, x, mask)
    torch.testing.assert_close(div, jac.diagonal(dim1=1, dim2=2).sum(1), rtol=1e-5, atol=1e-5)
    both = TwoHeadMLP(2, hidden=8, depth=1, num_classes=3, context_dim=2)
    a, b = both(t, x, (torch.tensor([0, 1, 2, 0, 1]), mask))
    assert a.shape == b.shape == (5, 2)
    with pytest.raises(ValueError, match="needs a context of 2 features"):
        net(t, x)
    with pytest.raises(ValueError, match="2 features per sample"):
        net(t, x, torch.ones(5, 3))
    with pytest.raises(ValueError, match="without context_dim"):
        MLP(2, hidden=8, depth=1)(t, x, mask)
    with pytest.raises(ValueError, match="context_dim must be positive"):
        MLP(2, context_dim=0)
