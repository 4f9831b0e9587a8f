"""The Python accumulators: chunked and sharded folding equals the one-shot call bit for bit, and
set_num_threads does not change any bits."""
import numpy as np
import pytest

import nllk


def _bits(v, dt):
    return np.array(v, dtype=dt).tobytes()


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("log_input,full", [(True, False), (False, True)])
def test_poisson_chunks_and_shards(dt, log_input, full):
    rng = np.random.default_rng(7)
    n = 300_001
    x = (rng.random(n) * 3).astype(dt)
    t = rng.poisson(2.0, n).astype(dt)
    mean = nllk.poisson_nll_loss(x, t, log_input=log_input, full=full, reduction="mean")
    total = nllk.poisson_nll_loss(x, t, log_input=log_input, full=full, reduction="sum")
    for threads in (1, 2, 3):
        nllk.set_num_threads(threads)
        cuts = np.sort(rng.integers(0, n, 9))
        bounds = [0, *cuts.tolist(), n]
        whole = nllk.PoissonAccumulator(dt, log_input, full)
        shards = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            whole.update(x[a:b], t[a:b])
            shards.append(nllk.PoissonAccumulator(dt, log_input, full, begin=a).update(x[a:b], t[a:b]))
        merged = shards[0]
        for s in shards[1:]:
            merged.merge(s)
        for acc in (whole, merged):
            r = acc.result()
            assert _bits(r.mean, dt) == _bits(mean, dt)
            assert _bits(r.sum, dt) == _bits(total, dt)
            assert r.count == n and acc.range == (0, n)
    nllk.set_num_threads(0)


@pytest.mark.parametrize("dt,tdt", [(np.float32, np.uint8), (np.float64, np.int64)])
def test_nll_chunks_bytes_roundtrip(dt, tdt):
    rng = np.random.default_rng(3)
    n, c, spatial = 37, 6, (11, 13)
    x = np.log(rng.dirichlet(np.ones(c), size=(n,) + spatial)).transpose(0, 3, 1, 2).astype(dt).copy()
    t = rng.integers(0, c, (n,) + spatial).astype(tdt)
    t[rng.random(t.shape) < 0.1] = 5 if tdt == np.uint8 else -100
    w = rng.random(c).astype(dt)
    ii = 5 if tdt == np.uint8 else -100
    mean, tw = nllk.nll_loss_forward(x, t.astype(np.int64), weight=w, ignore_index=ii, reduction="mean")
    acc = nllk.NLLAccumulator(c, spatial, dt, weight=w, ignore_index=ii, target_dtype=tdt)
    second = None
    for a in range(0, n, 5):
        if a == 20:  # the rest goes through a second accumulator shipped as bytes
            second = nllk.NLLAccumulator(c, spatial, dt, weight=w, ignore_index=ii, begin=a * 11 * 13,
                                         target_dtype=tdt)
        (second or acc).update(x[a:a + 5], t[a:a + 5])
    acc.merge(nllk.NLLAccumulator(c, spatial, dt, weight=w, ignore_index=ii, target_dtype=tdt)
              .load_bytes(second.to_bytes()))
    r = acc.result()
    assert _bits(r.mean, dt) == _bits(mean, dt)
    assert _bits(r.total_weight, dt) == _bits(tw, dt)


def test_errors():
    acc = nllk.NLLAccumulator(3, (), np.float32)
    with pytest.raises(IndexError, match=r"target\[2\] = 7"):
        acc.update(np.zeros((3, 3), np.float32), np.array([0, 1, 7]))
    assert acc.range == (0, 0)  # a failed update changes nothing
    with pytest.raises(TypeError):
        acc.update(np.zeros((3, 3), np.float64), np.array([0, 1, 2]))
    p = nllk.PoissonAccumulator(np.float32, begin=10)
    with pytest.raises(ValueError, match="adjacent"):
        nllk.PoissonAccumulator(np.float32).merge(p)
    with pytest.raises(TypeError):
        nllk.PoissonAccumulator(np.float32).merge(acc)
