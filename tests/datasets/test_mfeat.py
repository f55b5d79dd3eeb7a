import numpy as np

from keras_robult.datasets import mfeat


def test_load_data_offline():
    x, y = mfeat.load_data()
    widths = {"fou": 76, "fac": 216, "kar": 64, "pix": 240, "zer": 47, "mor": 6}
    assert {k: v.shape for k, v in x.items()} == {
        k: (2000, w) for k, w in widths.items()
    }
    assert list(x) == list(mfeat.VIEWS)
    np.testing.assert_array_equal(np.bincount(y), [200] * 10)
    assert all(
        np.isfinite(v).all() and v.dtype == np.float32 for v in x.values()
    )
    assert "Kybernetika" in mfeat.CITATION
