"""Image pre-processing against its definitions, not against edgekit's own output.

MNIST's digits were "size normalized to fit in a 20x20 pixel box while preserving their aspect
ratio ... centered in a 28x28 image by computing the center of mass of the pixels, and translating
the image so as to position this point at the center of the 28x28 field" (LeCun, Cortes, Burges).
The shipped digits show what that means in pixels: the longest side of every digit's box is 20,
and its centre of mass lies within half a pixel of (14, 14). `mnist_style` must make the same of a
photographed digit, so a constant moved by accident (the 20, the centring) fails here, though
training and the device, which share the function, would still agree with each other."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgekit.runtime.preprocess import (
    ImageSpec,
    centre_crop,
    dequantize,
    fit_image,
    light_ground,
    mnist_style,
    normalize,
    prepare_image,
    quantize,
)

pytestmark = pytest.mark.runtime_only

MNIST = ImageSpec(size=(28, 28), channels=1, scale=1 / 255, polarity="light-on-dark", crop="centre-of-mass")


def box_and_centre(digit: np.ndarray) -> tuple[int, int, float, float]:
    """(height, width) of the box around the non-zero pixels, and the centre of mass (y, x) in
    pixel indices (MNIST's own digits put it at (14, 14) to half a pixel)."""
    ys, xs = np.nonzero(digit)
    mass = digit.astype(np.float64)
    total = mass.sum()
    cy = (mass.sum(axis=1) * np.arange(digit.shape[0])).sum() / total
    cx = (mass.sum(axis=0) * np.arange(digit.shape[1])).sum() / total
    return int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1), cy, cx


def test_the_shipped_digits_are_the_definition(mnist):
    """The reference itself: MNIST's digits fit 20 pixels on their long side, centred by mass."""
    for digit in mnist.train.x[:300].reshape(-1, 28, 28):
        h, w, cy, cx = box_and_centre(digit)
        assert max(h, w) == 20 and abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def on_paper(digit: np.ndarray, frame: tuple[int, int], at: tuple[int, int], zoom: float) -> np.ndarray:
    """An MNIST digit as a photo of ink on paper: dark strokes, a light ground lit unevenly,
    grain; zoomed and placed at `at` (top, left) in a frame of `frame` (height, width)."""
    rng = np.random.default_rng(int(digit.sum()) % 1000)
    big = cv2.resize(digit, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_LINEAR).astype(np.float32)
    h, w = frame
    light = np.linspace(200, 240, w)[None, :] + np.linspace(-10, 10, h)[:, None]
    paper = light + rng.normal(0, 3, (h, w))
    top, left = at
    region = paper[top : top + big.shape[0], left : left + big.shape[1]]
    region -= big[: region.shape[0], : region.shape[1]] * 0.7  # ink darkens the paper
    return np.clip(paper, 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("frame", "at", "zoom"),
    [((240, 320), (30, 100), 6.0), ((320, 240), (120, 20), 5.0), ((97, 131), (5, 40), 3.1)],
    ids=["landscape", "portrait", "odd-size"],
)
@pytest.mark.parametrize("index", [0, 1, 7])
def test_a_photographed_digit_is_cropped_to_mnists_box_and_centred_by_mass(mnist, frame, at, zoom, index):
    digit = mnist.train.x[index].reshape(28, 28)
    photo = on_paper(digit, frame, at, zoom)
    assert light_ground(photo)
    out = mnist_style(photo, MNIST)
    assert out.shape == (28, 28) and out.dtype == np.uint8
    h, w, cy, cx = box_and_centre(out)
    assert max(h, w) == 20, f"the digit's box is {h}x{w}, MNIST's long side is 20"
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5, (cy, cx)
    # the aspect ratio is kept, and the strokes are MNIST's: light on black, the brightest 255
    h0, w0, _, _ = box_and_centre(digit)
    assert abs(h / w - h0 / w0) <= 0.15
    assert out.max() > 200 and out[0].max() == out[-1].max() == 0
    # and it is the same digit: close to MNIST's own picture of it
    corr = np.corrcoef(out.ravel().astype(float), digit.ravel().astype(float))[0, 1]
    assert corr > 0.8, corr


def test_a_digit_in_mnists_form_passes_through_unchanged(mnist):
    digit = mnist.train.x[3].reshape(28, 28)
    assert mnist_style(digit, MNIST) is digit or np.array_equal(mnist_style(digit, MNIST), digit)
    # at another size, light on dark, it is cropped and centred like any other frame
    larger = cv2.copyMakeBorder(digit, 10, 30, 25, 5, cv2.BORDER_CONSTANT, value=0)
    h, w, cy, cx = box_and_centre(mnist_style(larger, MNIST))
    assert max(h, w) == 20 and abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_the_box_scales_with_the_model_size(mnist):
    """At 56x56 the box is 40: MNIST's 20/28 of the frame."""
    photo = on_paper(mnist.train.x[0].reshape(28, 28), (240, 320), (30, 100), 6.0)
    out = mnist_style(
        photo, ImageSpec(size=(56, 56), channels=1, polarity="light-on-dark", crop="centre-of-mass")
    )
    h, w, cy, cx = box_and_centre(out)
    assert out.shape == (56, 56) and max(h, w) == 40 and abs(cy - 28) <= 0.5 and abs(cx - 28) <= 0.5


def test_blank_paper_gives_a_black_frame_and_specks_are_not_the_digit(mnist):
    # evenly lit blank paper: no strokes to find, so the frame is only inverted and resized
    paper = (np.linspace(200, 230, 160)[None, :] + np.zeros((120, 1))).astype(np.uint8)
    out = mnist_style(paper, MNIST)
    np.testing.assert_array_equal(out, cv2.resize(255 - paper, (28, 28), interpolation=cv2.INTER_AREA))
    photo = on_paper(mnist.train.x[0].reshape(28, 28), (240, 320), (30, 100), 6.0)
    photo[5:8, 5:8] = 0  # a speck of dirt far from the digit
    photo[230:233, 310:313] = 0
    h, w, cy, cx = box_and_centre(mnist_style(photo, MNIST))
    assert max(h, w) == 20 and abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_polarity_only_inverts_and_resizes():
    spec = ImageSpec(size=(28, 28), channels=1, polarity="light-on-dark")
    paper = np.full((28, 28), 230, np.uint8)
    paper[10:18, 12:15] = 20
    out = mnist_style(paper, spec)
    np.testing.assert_array_equal(out, 255 - paper)  # no crop asked: inverted only
    dark = 255 - paper
    assert mnist_style(dark, spec) is dark or np.array_equal(mnist_style(dark, spec), dark)


def test_letterbox_keeps_the_aspect_and_pads_with_the_cards_grey():
    """Ultralytics' LetterBox: scale by min(h/H, w/W), centre, fill the rest with grey 114."""
    frame = np.full((150, 200, 3), 200, np.uint8)
    spec = ImageSpec(size=(160, 160), resize="letterbox", pad=114)
    out = fit_image(frame, spec)
    assert out.shape == (160, 160, 3)
    # 200 -> 160 wide, 150 -> 120 tall, 20 rows of grey above and below
    assert (out[:20] == 114).all() and (out[-20:] == 114).all() and (out[20:140] == 200).all()
    tall = fit_image(
        np.full((200, 100, 3), 200, np.uint8), ImageSpec(size=(160, 160), resize="letterbox", pad=0)
    )
    assert (tall[:, :40] == 0).all() and (tall[:, -40:] == 0).all() and (tall[:, 40:120] == 200).all()
    assert fit_image(out, spec) is not None and np.array_equal(fit_image(out, spec), out)  # already its size


def test_stretch_and_crop_resize_as_their_definitions():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)
    stretched = fit_image(frame, ImageSpec(size=(60, 100)))
    np.testing.assert_array_equal(stretched, cv2.resize(frame, (100, 60), interpolation=cv2.INTER_AREA))
    # torchvision Resize(64) + CenterCrop(64): the short side to 64, the long one to int(64 * 200/120)
    cropped = centre_crop(frame, (64, 64))
    resized = cv2.resize(frame, (106, 64), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(cropped, resized[:, 21:85])
    tall = rng.integers(0, 256, (200, 120, 3), dtype=np.uint8)
    resized = cv2.resize(tall, (64, 106), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(centre_crop(tall, (64, 64)), resized[21:85])
    small = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    up = cv2.resize(small, (80, 64), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(centre_crop(small, (64, 64)), up[:, 8:72])
    assert fit_image(frame, ImageSpec(size=(64, 64), resize="crop")).shape == (64, 64, 3)


def test_colour_and_channel_handling():
    bgr = np.zeros((10, 12, 3), np.uint8)
    bgr[..., 0] = 255  # blue in OpenCV's order
    rgb = prepare_image(bgr, ImageSpec(size=(10, 12)))
    assert (rgb[..., 2] == 255).all() and (rgb[..., 0] == 0).all()  # the model takes RGB
    gray = fit_image(bgr, ImageSpec(size=(10, 12), channels=1))
    assert gray.shape == (10, 12, 1) and (gray == round(0.114 * 255)).all()
    bgra = np.dstack([bgr, np.full((10, 12), 7, np.uint8)])
    np.testing.assert_array_equal(fit_image(bgra, ImageSpec(size=(10, 12))), bgr)
    one = np.full((10, 12), 9, np.uint8)
    assert (fit_image(one, ImageSpec(size=(10, 12))) == 9).all() and fit_image(
        one, ImageSpec(size=(10, 12))
    ).shape[2] == 3


def test_normalise_and_quantize_are_the_affine_maps():
    pixels = np.array([0, 1, 127, 255], np.uint8)
    spec = ImageSpec(size=(1, 4), scale=2 / 255, offset=-1.0)
    np.testing.assert_allclose(normalize(pixels, spec), pixels.astype(float) * 2 / 255 - 1, atol=1e-6)
    x = np.array([-1.0, -0.5, 0.0, 0.49, 1.0], np.float32)
    # q = round(x / scale) + zero_point, clipped to the type's range
    np.testing.assert_array_equal(quantize(x, 1 / 127, 0, np.int8), [-127, -64, 0, 62, 127])
    np.testing.assert_array_equal(quantize(x, 1 / 100, 128, np.uint8), [28, 78, 128, 177, 228])
    np.testing.assert_array_equal(quantize(np.array([5.0, -5.0]), 0.01, 3, np.int8), [127, -128])
    np.testing.assert_allclose(dequantize(np.array([-128, 0, 3, 127], np.int8), 0.5, 3), [-65.5, -1.5, 0, 62])


def test_the_cards_image_fields_round_trip_and_default_as_documented():
    """The card's `preprocess` for images: what to_dict writes is what from_dict reads, and a
    field left out means the documented default (RGB, x / 255, stretch, letterbox grey 114)."""
    from edgekit.errors import ModelFileError

    letterboxed = ImageSpec((160, 224), 3, 1 / 127.5, -1.0, "letterbox", pad=0)
    d = letterboxed.to_dict()
    assert d == {
        "kind": "image",
        "size": [160, 224],
        "channels": 3,
        "scale": 1 / 127.5,
        "offset": -1.0,
        "resize": "letterbox",
        "pad": 0,
    }
    assert ImageSpec.from_dict(d) == letterboxed
    assert "pad" not in ImageSpec((28, 28), 1).to_dict()  # stretched specs keep the card they had
    assert ImageSpec.from_dict(MNIST.to_dict()) == MNIST and MNIST.mnist_like
    assert MNIST.to_dict()["polarity"] == "light-on-dark" and MNIST.to_dict()["crop"] == "centre-of-mass"
    bare = ImageSpec.from_dict({"kind": "image", "size": [32, 48]})
    assert bare == ImageSpec((32, 48)) and not bare.mnist_like
    assert (bare.channels, bare.scale, bare.offset, bare.resize, bare.pad) == (
        3,
        1 / 255,
        0.0,
        "stretch",
        114,
    )
    assert ImageSpec((8, 8), 1, polarity="light-on-dark").mnist_like
    assert ImageSpec((8, 8), 1, crop="centre-of-mass").mnist_like
    for bad, words in (
        ({"kind": "audio", "size": [1, 1]}, "not 'image'"),
        ({"kind": "image"}, "size"),
        ({"kind": "image", "size": [28, 28], "polarity": "dark"}, "polarity is 'dark'"),
        ({"kind": "image", "size": [28, 28], "crop": "middle"}, "crop is 'middle'"),
    ):
        with pytest.raises(ModelFileError, match=words):
            ImageSpec.from_dict(bad)


def test_light_ground_reads_the_border_only():
    """Paper or not: whether the median of the frame's border is above 127 (np.median's answer,
    the corners counted twice as np.concatenate of the four edges counts them)."""
    g = np.zeros((6, 8), np.uint8)
    g[1:-1, 1:-1] = 255  # a light inside on a dark border: MNIST's ground
    assert not light_ground(g)
    g = np.full((6, 8), 255, np.uint8)
    g[1:-1, 1:-1] = 0
    assert light_ground(g)
    # a border half light, half dark: the median is the mean of the middle two values
    for top, bottom, want in (
        (128, 126, False),
        (129, 126, True),
        (200, 0, False),
        (255, 129, True),
        (127, 127, False),
    ):
        g = np.full((4, 5), bottom, np.uint8)
        g[:2] = top
        edge = np.concatenate((g[0], g[-1], g[:, 0], g[:, -1]))
        assert (np.median(edge) > 127) == want
        assert light_ground(g) == want, (top, bottom)
    # more than half light, or fewer, decides without a tie
    g = np.zeros((5, 5), np.uint8)
    g[:3] = 255
    assert light_ground(g)
    assert not light_ground(255 - g)


def test_one_channel_frames_keep_their_channel_axis_through_every_resize():
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 256, (30, 40), dtype=np.uint8)
    up = fit_image(gray, ImageSpec(size=(60, 80), channels=1))  # upscale: bilinear
    assert up.shape == (60, 80, 1)
    np.testing.assert_array_equal(up[:, :, 0], cv2.resize(gray, (80, 60), interpolation=cv2.INTER_LINEAR))
    down = fit_image(gray, ImageSpec(size=(15, 20), channels=1))  # downscale: area
    np.testing.assert_array_equal(down[:, :, 0], cv2.resize(gray, (20, 15), interpolation=cv2.INTER_AREA))
    boxed = fit_image(gray, ImageSpec(size=(40, 40), channels=1, resize="letterbox", pad=7))
    assert boxed.shape == (40, 40, 1) and (boxed[:5] == 7).all() and (boxed[-5:] == 7).all()
    cropped = fit_image(gray, ImageSpec(size=(20, 20), channels=1, resize="crop"))
    assert cropped.shape == (20, 20, 1)
    np.testing.assert_array_equal(
        cropped[:, :, 0], cv2.resize(gray, (26, 20), interpolation=cv2.INTER_AREA)[:, 3:23]
    )
    assert centre_crop(gray, (10, 10)).shape == (10, 10, 1)


def test_a_crop_to_a_non_square_size_is_a_stretch_then_the_whole_of_it():
    """Resize(int) needs a square; another size is resized to exactly that size (nothing cut)."""
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 256, (50, 90, 3), dtype=np.uint8)
    out = centre_crop(frame, (20, 30))
    np.testing.assert_array_equal(out, cv2.resize(frame, (30, 20), interpolation=cv2.INTER_AREA))
    up = centre_crop(frame, (100, 120))
    np.testing.assert_array_equal(up, cv2.resize(frame, (120, 100), interpolation=cv2.INTER_LINEAR))
    narrower = centre_crop(frame, (50, 30))  # the same height: bilinear, as for any size not smaller
    np.testing.assert_array_equal(narrower, cv2.resize(frame, (30, 50), interpolation=cv2.INTER_LINEAR))


def test_non_images_are_refused_in_one_sentence():
    from edgekit.errors import DataError

    for bad in (np.zeros((4, 4, 2), np.uint8), np.zeros((2, 4, 4, 3), np.uint8), np.zeros(5, np.uint8)):
        with pytest.raises(DataError, match="expected an image"):
            fit_image(bad, ImageSpec(size=(4, 4)))


def test_frames_of_other_types_are_cropped_as_their_8_bit_values(mnist):
    photo = on_paper(mnist.train.x[0].reshape(28, 28), (240, 320), (30, 100), 6.0)
    want = mnist_style(photo, MNIST)
    np.testing.assert_array_equal(mnist_style(photo.astype(np.float32), MNIST), want)
    np.testing.assert_array_equal(mnist_style(photo[:, :, None], MNIST), want)  # H x W x 1


def test_fit_image_sends_an_mnist_card_through_the_crop(mnist):
    photo = on_paper(mnist.train.x[0].reshape(28, 28), (240, 320), (30, 100), 6.0)
    np.testing.assert_array_equal(fit_image(photo, MNIST), mnist_style(photo, MNIST)[:, :, None])
    bgr = np.dstack([photo] * 3)  # a colour camera frame: made grey first
    np.testing.assert_array_equal(fit_image(bgr, MNIST), mnist_style(photo, MNIST)[:, :, None])


def test_a_wide_digit_and_one_pixel_strokes_keep_their_proportions(mnist):
    """The box's long side is 20 whichever side is long; a stroke one pixel wide stays one pixel."""
    wide = np.ascontiguousarray(np.rot90(mnist.train.x[1].reshape(28, 28)))  # a 1 lying down
    h0, w0, _, _ = box_and_centre(wide)
    assert w0 > h0
    h, w, cy, cx = box_and_centre(
        mnist_style(cv2.copyMakeBorder(wide, 40, 40, 60, 60, cv2.BORDER_CONSTANT), MNIST)
    )
    assert w == 20 and abs(h / w - h0 / w0) <= 0.15 and abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5
    line = np.zeros((200, 150), np.uint8)
    line[50:150, 70] = 255  # a stroke one pixel wide, 100 tall
    h, w, _, _ = box_and_centre(mnist_style(line, MNIST))
    assert (h, w) == (20, 1)
    h, w, _, _ = box_and_centre(mnist_style(np.ascontiguousarray(line.T), MNIST))
    assert (h, w) == (1, 20)


def test_specks_much_smaller_than_the_strokes_are_left_out_and_pieces_of_the_digit_kept():
    """Connected pieces under 15% of the largest are dirt; larger ones are the digit (an i's dot)."""
    frame = np.zeros((200, 200), np.uint8)
    frame[60:140, 96:104] = 255  # the stem: 80 x 8 = 640 pixels
    frame[40:50, 96:106] = 255  # the dot: 100 pixels (16%), part of the digit
    frame[180:189, 10:19] = 255  # a speck: 81 pixels (13%), dirt
    h, w, cy, cx = box_and_centre(mnist_style(frame, MNIST))
    # the digit spans rows 40-139 (100 tall) and columns 96-105: 20 x 2 after the crop
    assert (h, w) == (20, 2) and abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5
    frame[40:50, 96:106] = 0
    frame[20:24, 88:112] = 255  # a bar of exactly 15% (96 pixels): still the digit
    h, w, _, _ = box_and_centre(mnist_style(frame, MNIST))
    assert (h, w) == (20, 4)  # rows 20-139 and columns 88-111: 120 x 24 -> 20 x 4 (without it, 20 x 2)


@pytest.mark.parametrize(("contrast", "found"), [(16, True), (15, False)])
def test_strokes_are_looked_for_from_a_contrast_of_16(contrast, found):
    frame = np.zeros((100, 100), np.uint8)
    frame[20:80, 45:55] = contrast  # a faint bar on black
    out = mnist_style(frame, MNIST)
    if found:  # cropped to MNIST's box and stretched to full brightness
        assert box_and_centre(out)[:2] == (20, 3) and out.max() > 200
    else:  # nothing to find: the frame as it is, resized
        np.testing.assert_array_equal(out, cv2.resize(frame, (28, 28), interpolation=cv2.INTER_AREA))


def test_stretching_picks_area_to_shrink_and_bilinear_to_grow_by_the_height():
    rng = np.random.default_rng(5)
    for shape, size in (((60, 50), (60, 100)), ((30, 200), (60, 100)), ((120, 60), (60, 60))):
        frame = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        interp = cv2.INTER_AREA if shape[0] > size[0] else cv2.INTER_LINEAR
        want = cv2.resize(frame, (size[1], size[0]), interpolation=interp)
        np.testing.assert_array_equal(fit_image(frame, ImageSpec(size=size)), want)


def test_mnists_own_digits_framed_in_black_come_back_as_themselves(mnist):
    """MNIST's digits are in MNIST's form already: framed in black at another size, the crop gives
    each one back, not resampled, not re-toned: every pixel it keeps is the digit's own value,
    every stroke pixel (128 and up) is kept, and the ground stays black. A few lose a faint rim
    under half Otsu's threshold, which moves their centre of mass by a pixel or leaves a box of 18
    to be resampled; the rest must come back exactly."""
    exact = 0
    for digit in mnist.train.x[:100].reshape(-1, 28, 28):
        out = mnist_style(cv2.copyMakeBorder(digit, 10, 30, 25, 5, cv2.BORDER_CONSTANT, value=0), MNIST)
        kept, strokes, ground = out > 0, digit >= 128, digit == 0
        exact += bool(
            np.array_equal(out[kept], digit[kept])
            and np.array_equal(out[strokes], digit[strokes])
            and not out[ground].any()
        )
    assert exact >= 85, f"{exact} of 100 digits came back as themselves"


def outline(height: int, width: int) -> np.ndarray:
    """A digit-like shape of full-strength strokes one pixel wide: a box with a bar across it."""
    shape = np.zeros((height, width), np.uint8)
    shape[[0, height // 2, -1]] = 255
    shape[:, [0, -1]] = 255
    return shape


def the_box(digit: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(digit)
    return digit[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


@pytest.mark.parametrize("long_side", [19, 21])
def test_a_digit_within_a_tenth_of_the_box_is_not_resampled(long_side):
    """A digit 19 or 21 pixels long is already in its box, as MNIST's own are: it comes back
    pixel for pixel, only moved to the centre."""
    shape = outline(long_side, 9)
    out = mnist_style(cv2.copyMakeBorder(shape, 30, 30, 30, 30, cv2.BORDER_CONSTANT, value=0), MNIST)
    np.testing.assert_array_equal(the_box(out), shape)


@pytest.mark.parametrize(
    ("height", "width"), [(10, 6), (12, 8), (100, 70)], ids=["twice", "five-thirds", "a-fifth"]
)
def test_a_digit_is_scaled_into_the_box_by_opencvs_zoom_or_area_average(height, width):
    """Into the 20-pixel box as OpenCV advises: bilinear to grow a small digit (its edges come
    out anti-aliased, as MNIST's normalisation left them), the area average to shrink a large one
    (a one-pixel stroke then fades, but is never skipped, as sampling would skip it)."""
    shape = outline(height, width)
    out = mnist_style(cv2.copyMakeBorder(shape, 30, 30, 30, 30, cv2.BORDER_CONSTANT, value=0), MNIST)
    scale = 20 / height
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    want = cv2.resize(shape.astype(np.float32), (round(width * scale), 20), interpolation=interp)
    np.testing.assert_array_equal(the_box(out), np.clip(want + 0.5, 0, 255).astype(np.uint8))


def test_a_stroke_up_to_a_third_of_the_frame_wide_is_a_stroke_not_the_ground():
    """The ground is what survives an opening a third of the frame wide: a bold stroke narrower
    than that (17 pixels in a 60-pixel frame) is ink, all of it, cropped and centred like any other."""
    frame = np.zeros((60, 60), np.uint8)
    frame[2:42, 2:19] = 255  # 40 tall, 17 wide, in the top left corner
    out = mnist_style(frame, MNIST)
    h, w, cy, cx = box_and_centre(out)
    assert (h, w) == (20, round(17 * 20 / 40)) and abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5
    assert (the_box(out) == 255).all()  # solid, not only the corners an opening rounds off


@pytest.mark.parametrize(
    ("frame", "at", "zoom", "edge"),
    [((24, 30), (2, 1), 0.7, 24), ((100, 120), (20, 15), 1.5, 95), ((240, 320), (30, 40), 2.0, 200)],
    ids=["tight-crop", "small", "large"],
)
def test_a_shadows_straight_edge_is_ground_not_a_stroke(mnist, frame, at, zoom, edge):
    """A shadow across the paper is uneven light: the opening that finds the ground follows its
    straight edge in place (a kernel of odd size, centred on each pixel, however small the frame),
    so no line of ink is left along it and the digit is cropped as it is without the shadow."""
    digit = mnist.train.x[0].reshape(28, 28)
    photo = on_paper(digit, frame, at, zoom)
    shadowed = photo.copy()
    shadowed[:, edge:] -= 80  # paper only there (above 200): no wrap-around
    h, w, cy, cx = box_and_centre(mnist_style(shadowed, MNIST))
    assert (h, w) == box_and_centre(mnist_style(photo, MNIST))[:2]
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_the_ground_between_strokes_is_what_lies_under_half_otsus_threshold():
    """Inside the digit's box, a pixel under half of Otsu's threshold (OpenCV's) is ground and
    turns black; from half of it up it is a stroke's faint edge and is kept as it is."""
    shape = outline(20, 9)
    shape[2:9, 1:8] = 80  # a faint wash inside the loop
    shape[12, 3], shape[14, 3] = 40, 39
    frame = cv2.copyMakeBorder(shape, 30, 30, 30, 30, cv2.BORDER_CONSTANT, value=0)
    threshold, _ = cv2.threshold(frame, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    assert threshold == 80  # so 40 is exactly half of it, and 39 under half
    want = shape.copy()
    want[14, 3] = 0
    np.testing.assert_array_equal(the_box(mnist_style(frame, MNIST)), want)
