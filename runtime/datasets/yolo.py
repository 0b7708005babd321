"""The `yolo` dataset: images beside YOLO label files, for the `detector` recipe.

Layouts (`--data PATH`):

- `PATH/images/*.png` with `PATH/labels/*.txt` (the Ultralytics rule: the label of `.../images/x.jpg`
  is `.../labels/x.txt`), or each label `.txt` beside its image in the same folder;
- either of those under `PATH/train/` and `PATH/test/` (or `val/`), or as `images/train` with
  `images/val` (Ultralytics): that split is used; otherwise a fixed fifth is held out.

Class names come from `classes.txt` (one per line) or the `names:` of `data.yaml` in PATH; with
neither, classes are numbered from the labels. A label line is `class cx cy w h`, normalised to the
image. A malformed line or a class outside the list stops loading with one sentence naming the file
and line (a wrong label would silently train a wrong model); an image with no label file has no
objects; an unreadable image is skipped and counted. Images of different sizes are stretched to the
most common size (normalised boxes do not change under a stretch).

`--data generated` renders the default scenes of `edgekit data make scenes` in memory instead.

Split.y: an object array of (k, 5) float32 [class, cx, cy, w, h] per image."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np

from edgekit.errors import DataError
from edgekit.runtime.datasets import DATASETS, IMAGE_SUFFIXES, Dataset, Split

HELDOUT_FRACTION = 0.2
LAYOUT = (
    "a folder with images/ and labels/ (or label .txt files beside the images), optionally under "
    "train/ and test/, and a classes.txt or data.yaml naming the classes"
)


def parse_names(text: str, where: Path) -> tuple[str, ...]:
    """The `names:` of a data.yaml: an inline list, a block list, or a block `index: name` mapping."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^names\s*:\s*(.*?)\s*(#.*)?$", line)
        if not m:
            continue
        inline = m.group(1)
        if inline.startswith("["):
            items = [s.strip().strip("'\"") for s in inline.strip("[]").split(",")]
            return tuple(s for s in items if s)
        names: dict[int, str] = {}
        for follow in lines[i + 1 :]:
            follow = re.sub(r"\s+#.*$", "", follow)  # a trailing comment
            item = re.match(r"^\s+-\s*(.+?)\s*$", follow)
            pair = re.match(r"^\s+(\d+)\s*:\s*(.+?)\s*$", follow)
            if item:
                names[len(names)] = item.group(1).strip("'\"")
            elif pair:
                names[int(pair.group(1))] = pair.group(2).strip("'\"")
            elif follow.strip() and not follow.lstrip().startswith("#"):
                break
        if names and sorted(names) == list(range(len(names))):
            return tuple(names[k] for k in range(len(names)))
        raise DataError(
            f"{where}: cannot read its names: (an inline [a, b] list, a '- name' list or '0: name' lines)"
        )
    raise DataError(f"{where} has no names: entry")


def class_names(root: Path) -> tuple[str, ...] | None:
    """Class names from classes.txt or data.yaml in `root`; None when it has neither."""
    txt = root / "classes.txt"
    if txt.is_file():
        names = tuple(line.strip() for line in txt.read_text(encoding="utf-8").splitlines() if line.strip())
        if not names:
            raise DataError(f"{txt} is empty: it needs one class name per line")
        return names
    for name in ("data.yaml", "data.yml", "dataset.yaml"):
        if (root / name).is_file():
            return parse_names((root / name).read_text(encoding="utf-8"), root / name)
    return None


def read_labels(path: Path, num_classes: int | None) -> np.ndarray:
    """One YOLO label file -> (k, 5) float32; DataError naming the file and line for a bad line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read label file {path}: {e}") from None
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            values = [float(p) for p in parts]
        except ValueError:
            values = []
        if len(values) != 5 or not values[0].is_integer():
            raise DataError(
                f"{path} line {n} is {line.strip()!r}: a YOLO label line is 'class cx cy w h' "
                "(an integer class, then four numbers between 0 and 1)"
            )
        cls, cx, cy, w, h = values
        if cls < 0 or (num_classes is not None and cls >= num_classes):
            raise DataError(
                f"{path} line {n} has class {int(cls)}, outside the {num_classes} classes of the class list "
                f"(0-{(num_classes or 1) - 1}): fix the label or add the class to classes.txt / data.yaml"
            )
        if not (0 <= cx <= 1 and 0 <= cy <= 1 and 0 < w <= 1 and 0 < h <= 1):
            raise DataError(
                f"{path} line {n} has a box ({cx}, {cy}, {w}, {h}) outside the image: YOLO boxes are "
                "centre x, centre y, width, height as fractions of the image (0-1)"
            )
        rows.append(values)
    return np.asarray(rows, np.float32).reshape(-1, 5)


def label_path(image: Path) -> Path:
    """Where an image's label file is: `.../labels/x.txt` for `.../images/x.png`, else beside it."""
    parts = image.parts
    if "images" in parts:
        i = len(parts) - 1 - parts[::-1].index("images")
        candidate = Path(*parts[:i], "labels", *parts[i + 1 :]).with_suffix(".txt")
        if candidate.is_file():
            return candidate
    return image.with_suffix(".txt")


def _images(folder: Path) -> list[Path]:
    base = folder / "images" if (folder / "images").is_dir() else folder
    return sorted(
        p
        for p in base.rglob("*")
        if p.is_file()
        and p.suffix.lower() in IMAGE_SUFFIXES
        # masks (the scenes' segmentation targets) and labels are not images to detect in
        and not {"masks", "labels"} & set(p.relative_to(base).parts[:-1])
    )


def _read_images(files: list[Path]) -> tuple[list[np.ndarray], list[Path], int]:
    import cv2

    images, kept, skipped = [], [], 0
    for f in files:
        # np.fromfile + imdecode: non-ASCII paths work, and a corrupt file gives None, not a crash
        image = cv2.imdecode(np.fromfile(f, np.uint8), cv2.IMREAD_COLOR)
        if image is None or image.size == 0:
            skipped += 1
            continue
        images.append(image)
        kept.append(f)
    return images, kept, skipped


def _load_part(folder: Path, num_classes: int | None) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    files = _images(folder)
    if not files:
        raise DataError(f"{folder} holds no images: give --data {LAYOUT}")
    images, kept, skipped = _read_images(files)
    labels = []
    for f in kept:
        lp = label_path(f)
        labels.append(read_labels(lp, num_classes) if lp.is_file() else np.zeros((0, 5), np.float32))
    return images, labels, skipped


def _stack(images: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    import cv2

    h, w = shape
    out = [
        im if im.shape[:2] == (h, w) else cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA)
        for im in images
    ]
    return np.stack(out)


def _objects(labels: list[np.ndarray]) -> np.ndarray:
    y = np.empty(len(labels), dtype=object)
    for i, rows in enumerate(labels):
        y[i] = rows
    return y


def _split_folders(root: Path) -> tuple[Path, Path] | None:
    """(train, held-out) folders of a layout that has a split, else None."""
    for base in (root, root / "images"):
        test = next((base / n for n in ("test", "val", "valid") if (base / n).is_dir()), None)
        if (base / "train").is_dir() and test is not None:
            return base / "train", test
    return None


def load_yolo_folder(path: str | Path, name: str = "yolo") -> Dataset:
    """Images beside YOLO labels under `path` (see the module's layouts) as a Dataset."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"--data {root} is not a folder: give {LAYOUT}")
    if not any(root.iterdir()):
        raise DataError(f"--data {root} is empty: give {LAYOUT}")
    names = class_names(root)
    nc = None if names is None else len(names)
    split = _split_folders(root)
    if split is not None:
        xs, ys, skipped = _load_part(split[0], nc)
        xt, yt, skipped_test = _load_part(split[1], nc)
        skipped += skipped_test
    else:
        xs, ys, skipped = _load_part(root, nc)
        xt, yt = [], []
    if not xs or (split is not None and not xt):
        raise DataError(f"{root} has no readable images ({skipped} unreadable): give --data {LAYOUT}")
    if names is None:
        top = max((int(r[:, 0].max()) for r in ys + yt if len(r)), default=0)
        names = tuple(str(i) for i in range(top + 1))
    shape = Counter(im.shape[:2] for im in xs + xt).most_common(1)[0][0]
    if split is not None:
        train, heldout = Split(_stack(xs, shape), _objects(ys)), Split(_stack(xt, shape), _objects(yt))
    else:
        if len(xs) < 2:
            raise DataError(f"{root} has one readable image: training and a held-out check need two or more")
        x, y = _stack(xs, shape), _objects(ys)
        order = np.random.default_rng(0).permutation(len(x))
        n_test = max(1, round(len(x) * HELDOUT_FRACTION))
        test, rest = np.sort(order[:n_test]), order[n_test:]
        train, heldout = Split(x[rest], y[rest]), Split(x[test], y[test])
    objects = sum(len(r) for r in ys + yt)
    note = f", {skipped} unreadable image(s) skipped" if skipped else ""
    return Dataset(
        name,
        str(root),
        f"{len(xs) + len(xt)} images with {objects} labelled objects of {len(names)} classes from {root}{note}",
        names,
        train,
        heldout,
        skipped=skipped,
    )


def generated_scenes(seed: int = 0) -> Dataset:
    """The default scenes of `edgekit data make scenes`, rendered in memory (no files)."""
    from edgekit.runtime.datasets.synth.scenes import DEFAULT_COUNT, render_scenes, split_counts

    n_train, n_test = split_counts(DEFAULT_COUNT)
    train, test = render_scenes(n_train, seed, "train"), render_scenes(n_test, seed, "test")
    return Dataset(
        "yolo",  # the registry name: export reloads the data by it, with source "generated"
        "generated",
        f"{n_train + n_test} generated scenes (`edgekit data make scenes --seed {seed}`): MNIST digits and "
        "shapes on procedural textures; test scenes use only held-out digits",
        train.classes,
        Split(train.images, train.boxes),
        Split(test.images, test.boxes),
    )


@DATASETS.register("yolo")
def yolo(data: str | None = None) -> Dataset:
    """YOLO-labelled images from `--data PATH`, or `--data generated`: the default scenes rendered in
    memory (the same as `edgekit data make scenes` writes)."""
    if data in (None, "", "auto"):
        raise DataError(
            f"the detector needs --data: {LAYOUT}; make one with `edgekit data make scenes --out scenes` "
            "and pass --data scenes (or --data generated to render the same scenes in memory)"
        )
    if data == "generated":
        return generated_scenes()
    return load_yolo_folder(data)
