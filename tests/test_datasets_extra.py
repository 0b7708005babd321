"""The idx reader, Fashion-MNIST, CIFAR-10's python batches and class-per-folder images: real
files written by the tests (or installed by Debian), never a download."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest

from edgekit.errors import DataError
from edgekit.runtime.datasets import fashion, load_dataset
from edgekit.runtime.datasets._files import read_idx
from edgekit.runtime.datasets.fashion import FASHION_FILES, FASHION_LABELS

pytestmark = pytest.mark.runtime_only  # needs no TensorFlow: run on arm64 too


def write_idx(path, array: np.ndarray, compress: bool = False):
    """An idx file as LeCun's format describes it: 0, 0, type 0x08, ndim, big-endian dims, bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    raw = header + np.ascontiguousarray(array, np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def write_fashion_folder(folder, x_train, y_train, x_test, y_test, compress=True):
    folder.mkdir(parents=True, exist_ok=True)
    for stem, arr in zip(FASHION_FILES, (x_train, y_train, x_test, y_test)):
        write_idx(folder / (stem + (".gz" if compress else "")), arr, compress)
    return folder


# ---- idx ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trips_real_digits_plain_and_gzip(tmp_path, mnist, compress):
    images = mnist.heldout.x[:50, :, :, 0]
    path = write_idx(tmp_path / "images-idx3-ubyte", images, compress)
    back = read_idx(path)
    assert back.shape == (50, 28, 28) and back.dtype == np.uint8 and np.array_equal(back, images)
    labels = read_idx(write_idx(tmp_path / "labels-idx1-ubyte", mnist.heldout.y[:50], compress))
    assert labels.shape == (50,) and np.array_equal(labels, mnist.heldout.y[:50])


def test_idx_reader_names_what_is_wrong_with_a_bad_file(tmp_path, mnist):
    good = write_idx(tmp_path / "good", mnist.heldout.x[:10, :, :, 0])
    raw = good.read_bytes()
    (tmp_path / "png").write_bytes(b"\x89PNG\r\n\x1a\n" + raw[8:])
    with pytest.raises(DataError, match="is not an idx file: its magic number is 89504e47"):
        read_idx(tmp_path / "png")
    (tmp_path / "cut").write_bytes(raw[:-100])
    with pytest.raises(DataError, match="header promises 7856"):
        read_idx(tmp_path / "cut")
    (tmp_path / "bad.gz").write_bytes(gzip.compress(raw)[:-20])  # a truncated gzip stream
    with pytest.raises(DataError, match="cannot read .*bad.gz as an idx file"):
        read_idx(tmp_path / "bad.gz")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(DataError, match="magic number is missing"):
        read_idx(tmp_path / "empty")


# ---- Fashion-MNIST -----------------------------------------------------------------------------


def test_fashion_mnist_from_a_folder_of_idx_files_and_its_errors(tmp_path, mnist):
    # real 28x28 images in the four-file layout (digits stand in for garments: same format)
    x, y = mnist.train.x[:200, :, :, 0], mnist.train.y[:200]
    folder = write_fashion_folder(tmp_path / "fm", x[:150], y[:150], x[150:], y[150:])
    ds = load_dataset("fashion-mnist", str(folder))
    assert ds.labels == FASHION_LABELS and ds.labels[9] == "Ankle boot"
    assert ds.train.x.shape == (150, 28, 28, 1) and len(ds.heldout) == 50
    assert np.array_equal(ds.heldout.x[:, :, :, 0], x[150:]), "held out: the test files, unchanged"
    plain = write_fashion_folder(tmp_path / "plain", x[:150], y[:150], x[150:], y[150:], compress=False)
    assert np.array_equal(load_dataset("fashion-mnist", str(plain)).train.y, y[:150])

    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="lacks the Fashion-MNIST idx file.*t10k-labels.*apt-get install"):
        load_dataset("fashion-mnist", str(folder))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", y[150:160], compress=True)
    with pytest.raises(DataError, match="has 50 images but .* has 10 labels"):
        load_dataset("fashion-mnist", str(folder))
    with pytest.raises(DataError, match="is not a folder.*apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist", str(tmp_path / "nowhere"))


def test_fashion_mnist_absent_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion, "FASHION_DEBIAN", tmp_path / "not-installed")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(DataError) as e:
        load_dataset("fashion-mnist")
    assert "apt-get install dataset-fashion-mnist" in str(e.value) and "--data" in str(e.value)


def test_debian_fashion_mnist_is_the_full_real_set():
    if not all((fashion.FASHION_DEBIAN / f"{s}.gz").exists() for s in FASHION_FILES):
        pytest.skip("Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
    ds = load_dataset("fashion-mnist")
    assert str(fashion.FASHION_DEBIAN) in ds.description
    assert ds.train.x.shape == (60_000, 28, 28, 1) and ds.heldout.x.shape == (10_000, 28, 28, 1)
    assert np.bincount(ds.train.y).tolist() == [6000] * 10
    assert np.bincount(ds.heldout.y).tolist() == [1000] * 10
    # real photographs of garments: dark background, a large lit object (far more "ink" than digits)
    assert 0.3 < (ds.heldout.x > 30).mean() < 0.7
    assert len({d.tobytes() for d in ds.heldout.x[:2000]}) == 2000
    # trousers are narrow and tall, bags wide: the mean image of each class shows its shape
    trousers, bags = ds.heldout.x[ds.heldout.y == 1].mean(0), ds.heldout.x[ds.heldout.y == 8].mean(0)
    assert trousers[:, :6].mean() < bags[:, :6].mean()


# ---- CIFAR-10 python batches -------------------------------------------------------------------


def drawn_images(n: int, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """RGB images of a filled circle (class 0), square (1) or triangle (2) on a noisy background."""
    import cv2

    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for i in range(n):
        img = rng.integers(0, 60, size=(size, size, 3), dtype=np.uint8)
        colour = tuple(int(c) for c in rng.integers(120, 256, size=3))
        c, r = size // 2 + int(rng.integers(-3, 4)), size // 4 + int(rng.integers(0, 3))
        kind = i % 3
        if kind == 0:
            cv2.circle(img, (c, c), r, colour, -1)
        elif kind == 1:
            cv2.rectangle(img, (c - r, c - r), (c + r, c + r), colour, -1)
        else:
            pts = np.array([[c, c - r], [c - r, c + r], [c + r, c + r]], np.int32)
            cv2.fillPoly(img, [pts], colour)
        xs.append(img)
        ys.append(kind)
    return np.stack(xs), np.asarray(ys)


def write_cifar_batch(path, x: np.ndarray, y: np.ndarray):
    """A batch as CIFAR's python files hold it: a pickled dict, planar RGB rows of 3,072 bytes."""
    rows = x.transpose(0, 3, 1, 2).reshape(len(x), -1)
    d = {b"batch_label": b"test", b"labels": [int(v) for v in y], b"data": rows, b"filenames": []}
    path.write_bytes(pickle.dumps(d, protocol=4))


def write_cifar_folder(folder):
    folder.mkdir(parents=True)
    for i in range(1, 6):
        write_cifar_batch(folder / f"data_batch_{i}", *drawn_images(12, seed=i))
    x, y = drawn_images(9, seed=9)
    write_cifar_batch(folder / "test_batch", x, y)
    return x


def test_cifar10_reads_the_keras_cache_and_a_folder_of_batches(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(DataError, match="not in the Keras cache: use --data keras"):
        load_dataset("cifar10")
    cached = tmp_path / "keras" / "datasets" / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    test_x = write_cifar_folder(cached)
    ds = load_dataset("cifar10")
    assert ds.source == "keras" and ds.labels[:2] == ("airplane", "automobile")
    assert ds.train.x.shape == (60, 32, 32, 3) and ds.train.x.dtype == np.uint8
    # planar RGB rows come back as the same HWC images, in OpenCV's BGR order as every Split holds them
    assert np.array_equal(ds.heldout.x, test_x[..., ::-1])
    again = load_dataset("cifar10", str(cached))
    assert again.source == str(cached) and np.array_equal(again.train.y, ds.train.y)


def test_cifar10_refuses_a_pickle_that_would_run_code(tmp_path):
    folder = tmp_path / "batches"
    write_cifar_folder(folder)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}, protocol=4))
    with pytest.raises(DataError, match="data_batch_3 is not a CIFAR-10 python batch.*refusing to load"):
        load_dataset("cifar10", str(folder))
    assert not marker.exists()


# ---- class-per-folder images -------------------------------------------------------------------


def write_image_folder(root, per_class: int = 6, size: int = 48):
    import cv2

    x, y = drawn_images(3 * per_class, size=size)
    for i, (img, label) in enumerate(zip(x, y)):
        folder = root / ("circle", "square", "triangle")[label]
        folder.mkdir(parents=True, exist_ok=True)
        ext = ".png" if i % 2 else ".jpg"
        assert cv2.imwrite(str(folder / f"{i}{ext}"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return x, y


def test_image_folder_is_decoded_resized_and_split_by_class(tmp_path):
    write_image_folder(tmp_path / "shapes")
    (tmp_path / "shapes" / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (tmp_path / "shapes" / "square" / "notes.txt").write_text("not an image, not counted")
    ds = load_dataset("cifar10", str(tmp_path / "shapes"))
    assert ds.labels == ("circle", "square", "triangle")
    assert ds.train.x.shape[1:] == (32, 32, 3) and ds.train.x.dtype == np.uint8
    assert len(ds.train) + len(ds.heldout) == 18 and np.bincount(ds.heldout.y).tolist() == [1, 1, 1]
    assert ds.skipped == 1 and "1 unreadable image(s) skipped" in ds.description
    assert ds.card_entry()["skipped"] == 1
    # a red square stays red: OpenCV's BGR is turned into the RGB the model is trained on
    centre = ds.train.x[ds.train.y == 1][:, 14:18, 14:18].reshape(-1, 3).astype(int)
    assert (centre.max(axis=0) >= 120).all() and (centre >= 0).all()


def test_image_folder_with_train_and_test_subfolders_keeps_that_split(tmp_path):
    write_image_folder(tmp_path / "d" / "train", per_class=4)
    write_image_folder(tmp_path / "d" / "test", per_class=2)
    ds = load_dataset("cifar10", str(tmp_path / "d"))
    assert len(ds.train) == 12 and len(ds.heldout) == 6 and ds.labels == ("circle", "square", "triangle")


def test_image_folder_errors_are_one_clear_sentence(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("cifar10", str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="is empty"):
        load_dataset("cifar10", str(tmp_path / "empty"))
    write_image_folder(tmp_path / "d", per_class=2)
    (tmp_path / "d" / "hexagon").mkdir()
    with pytest.raises(DataError, match="class folder .*hexagon has no images"):
        load_dataset("cifar10", str(tmp_path / "d"))
    (tmp_path / "d" / "hexagon" / "a.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match="hexagon has no readable images \\(1 corrupt\\)"):
        load_dataset("cifar10", str(tmp_path / "d"))
    (tmp_path / "loose").mkdir()
    (tmp_path / "loose" / "a.png").write_bytes(b"x")
    with pytest.raises(DataError, match="holds no class folders"):
        load_dataset("cifar10", str(tmp_path / "loose"))
