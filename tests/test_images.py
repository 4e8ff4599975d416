"""Tests for vgg16.images: full decoding, what a record stores, exact pixels, parallel checks."""

import io
import multiprocessing
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, ImageFile

from vgg16 import images
from vgg16.images import BadImages, check, decode_all, network_input, record_bytes


def _save(path: Path, image: Image.Image, fmt: str, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format=fmt, **options)
    return path


def _noise(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_rgb_jpeg_is_stored_unchanged(tmp_path: Path) -> None:
    path = _save(tmp_path / "rgb.JPEG", Image.fromarray(_noise((30, 40, 3))), "JPEG")
    assert record_bytes(path) == path.read_bytes()


def test_other_images_are_stored_as_jpegs_at_quality_95(tmp_path: Path) -> None:
    pixels = _noise((30, 40, 3))
    path = _save(tmp_path / "noise.JPEG", Image.fromarray(pixels), "PNG")
    reference = io.BytesIO()
    Image.fromarray(pixels).save(reference, format="JPEG", quality=95)

    assert record_bytes(path) == reference.getvalue()


@pytest.mark.parametrize(
    ("mode", "fmt", "colour", "rgb"),
    [
        ("L", "JPEG", 128, (128, 128, 128)),
        ("CMYK", "JPEG", (0, 180, 220, 50), None),
        ("RGBA", "PNG", (10, 200, 30, 255), (10, 200, 30)),
        ("P", "PNG", 0, None),
        ("RGB", "BMP", (10, 20, 30), (10, 20, 30)),
        ("RGB", "TIFF", (90, 20, 30), (90, 20, 30)),
    ],
)
def test_other_images_become_rgb_jpegs(
    tmp_path: Path, mode: str, fmt: str, colour: object, rgb: tuple | None
) -> None:
    source = Image.new(mode, (40, 30), colour)
    path = _save(tmp_path / f"{mode}.JPEG", source, fmt)  # a PNG named .JPEG, as in ImageNet

    out = Image.open(io.BytesIO(record_bytes(path)))

    assert (out.format, out.mode, out.size) == ("JPEG", "RGB", (40, 30))
    expected = rgb or source.convert("RGB").getpixel((20, 15))
    np.testing.assert_allclose(out.getpixel((20, 15)), expected, atol=3)


def test_sixteen_bit_greyscale_is_scaled_not_clipped(tmp_path: Path) -> None:
    """Pillow's own RGB conversion turns every 16-bit value above 255 into white."""
    wide = np.array([[0, 257, 32896, 65535, 1000]], np.uint16)
    path = _save(tmp_path / "deep.png", Image.fromarray(wide), "PNG")
    assert Image.open(path).mode.startswith("I")

    pixels = network_input(path)

    np.testing.assert_array_equal(pixels[..., 0], [[0, 1, 128, 255, 4]])
    np.testing.assert_array_equal(pixels[..., 0], pixels[..., 2])


@pytest.mark.parametrize("value", [65536, -1])
def test_32_bit_pixels_beyond_16_bits_are_refused_with_the_reason(tmp_path: Path, value: int):
    """A 32-bit integer TIFF ("I") holding values no 16-bit image has: no range to map."""
    pixels = np.array([[0, 100, value]], np.int32)
    path = _save(tmp_path / "wide.tif", Image.fromarray(pixels, mode="I"), "TIFF")
    with pytest.raises(BadImages, match=r"wide\.tif: I pixels outside 0\.\.65535 \(not 16-bit"):
        check(path)
    in_range = _save(
        tmp_path / "fits.tif", Image.fromarray(pixels.clip(0, 65535), mode="I"), "TIFF"
    )
    check(in_range)


def test_floating_point_images_are_refused_with_the_reason(tmp_path: Path) -> None:
    path = _save(tmp_path / "float.tif", Image.fromarray(np.ones((4, 4), np.float32)), "TIFF")
    with pytest.raises(BadImages, match=r"float\.tif: floating-point pixels have no fixed range"):
        check(path)


def _decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_lossless_images_give_their_own_pixels_jpegs_their_records(tmp_path: Path) -> None:
    """An RGB JPEG is its own record; a greyscale one's record is re-encoded as RGB, and
    evaluation sees that record's pixels, not the file's."""
    pixels = _noise((30, 40, 3))
    png = _save(tmp_path / "a.png", Image.fromarray(pixels), "PNG")
    jpeg = _save(tmp_path / "a.jpg", Image.fromarray(pixels), "JPEG", quality=80)
    grey_jpeg = _save(tmp_path / "g.jpg", Image.fromarray(pixels[..., 0]), "JPEG")

    np.testing.assert_array_equal(network_input(png), pixels)
    np.testing.assert_array_equal(network_input(jpeg), _decoded(jpeg.read_bytes()))
    record = _decoded(record_bytes(grey_jpeg))
    np.testing.assert_array_equal(network_input(grey_jpeg), record)
    assert not np.array_equal(record, _decoded(grey_jpeg.read_bytes()))  # re-encoding shows


def _bad_files(folder: Path) -> dict[Path, str]:
    """One file of each kind of damage, with the reason `check` must give."""
    folder.mkdir(parents=True, exist_ok=True)
    good = _save(folder / "good.jpg", Image.fromarray(_noise((60, 80, 3))), "JPEG")
    data = good.read_bytes()
    truncated, cut_end, empty, text = (folder / n for n in ("t.jpg", "e.jpg", "z.png", "h.jpg"))
    truncated.write_bytes(data[: len(data) // 2])
    cut_end.write_bytes(data[:-2])  # only the end marker is missing: MindSpore decodes it
    empty.write_bytes(b"")
    text.write_bytes(b"<html>404 Not Found</html>")
    return {
        truncated: "cannot be decoded (image file is truncated",
        cut_end: "cannot be decoded (image file is truncated",
        empty: "empty file (0 bytes)",
        text: "not an image Pillow can read",
    }


def test_every_kind_of_damage_is_named_with_its_reason(tmp_path: Path) -> None:
    for path, reason in _bad_files(tmp_path).items():
        with pytest.raises(BadImages) as excinfo:
            check(path)
        assert excinfo.value.bad[0][0] == path
        assert excinfo.value.bad[0][1].startswith(reason)
        with pytest.raises(BadImages):
            record_bytes(path)


def test_decode_all_yields_good_results_in_order_then_lists_every_bad_file(
    tmp_path: Path, capsys
) -> None:
    bad = _bad_files(tmp_path / "bad")
    good = [
        _save(tmp_path / f"{i}.png", Image.fromarray(_noise((8, 8, 3), i)), "PNG")
        for i in range(40)
    ]
    paths = good[:20] + list(bad) + good[20:]

    results = []
    with pytest.raises(BadImages) as excinfo:
        for position, data in decode_all(images.record_bytes, paths, "test"):
            results.append((position, data))

    assert [p for p, _ in results] == [*range(20), *range(24, 44)]  # good ones, in order
    assert [data for _, data in results] == [record_bytes(p) for p in good]
    assert [path for path, _ in excinfo.value.bad] == sorted(bad)  # e, h, t, z
    message = str(excinfo.value)
    assert message.startswith("4 image file(s) cannot be decoded:")
    assert all(f"\n  {path}: {reason}" in message for path, reason in bad.items())
    assert capsys.readouterr().err.startswith("test: decoded 44/44 images, ")


def test_decode_all_reports_progress(tmp_path: Path, capsys, monkeypatch) -> None:
    """The rate is images per second since the start: a clock read at 100 s when it starts,
    then 100.5, 102 and 110 s at the three progress lines gives 16/0.5, 32/2 and 40/10."""
    monkeypatch.setattr(images, "_PROGRESS_EVERY", 16)
    clock = iter([100.0, 100.5, 102.0, 110.0])
    monkeypatch.setattr(images, "time", SimpleNamespace(monotonic=lambda: next(clock)))
    paths = [_save(tmp_path / f"{i}.png", Image.new("L", (4, 4), i), "PNG") for i in range(40)]

    assert [p for p, _ in decode_all(check, paths, "verify")] == list(range(40))

    assert capsys.readouterr().err.splitlines() == [
        "verify: decoded 16/40 images, 32 img/s, 0 bad",
        "verify: decoded 32/40 images, 16 img/s, 0 bad",
        "verify: decoded 40/40 images, 4 img/s, 0 bad",
    ]


@pytest.mark.parametrize(("count", "cores", "workers"), [(8, 4, 1), (24, 4, 1), (40, 1, 1)])
def test_decode_all_starts_a_worker_per_16_images_within_the_cores_allowed(
    tmp_path: Path, monkeypatch, count: int, cores: int, workers: int
) -> None:
    """`cpus()` is the package's one rule for how many processes to start (a SLURM allocation
    or `taskset` may allow fewer cores than the node has); small sets need fewer still."""
    monkeypatch.setattr(images, "cpus", lambda: cores)
    paths = [_save(tmp_path / f"{i}.png", Image.new("L", (4, 4), i), "PNG") for i in range(count)]

    started = []
    for position, _ in decode_all(check, paths, "verify"):
        if position == 0:
            started = multiprocessing.active_children()

    assert len(started) == workers


#: Changed by the test below in this process only; a spawned worker imports this module afresh.
_CALLER_STATE = {"changed": False}


def _caller_state_seen(path: Path) -> bool:
    return _CALLER_STATE["changed"]


def test_decode_all_workers_are_spawned_without_the_callers_state(
    tmp_path: Path, monkeypatch
) -> None:
    """A forked worker would inherit the caller's memory, and with it MindSpore's threads in
    whatever state they were when it forked."""
    monkeypatch.setitem(_CALLER_STATE, "changed", True)
    paths = [_save(tmp_path / f"{i}.png", Image.new("L", (4, 4), i), "PNG") for i in range(3)]

    assert [seen for _, seen in decode_all(_caller_state_seen, paths, "test")] == [False] * 3


def test_extensions_are_the_formats_pillow_decodes_by_itself() -> None:
    assert {".jpeg", ".jpg", ".png", ".bmp", ".tif", ".webp", ".gif"} <= images.IMAGE_EXTENSIONS
    assert not {".txt", ".xml", ".eps", ".mpg", ""} & images.IMAGE_EXTENSIONS


def _encoded(image: Image.Image, fmt: str, **options) -> np.ndarray:
    """An image as a record gives it: its encoded bytes as a uint8 array."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return np.frombuffer(buffer.getvalue(), dtype=np.uint8)


def _smooth(width: int, height: int) -> Image.Image:
    return Image.fromarray(_noise((12, 16, 3))).resize((width, height), Image.BICUBIC)


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_a_record_decodes_to_the_rgb_pixels_pillow_gives(mode: str) -> None:
    """libjpeg-turbo's own colour conversion (RGB, greyscale), Pillow's where it has none
    (CMYK), and any other format through Pillow: the pixels of Pillow's convert("RGB")."""
    for record in (_encoded(_smooth(200, 150).convert(mode), "JPEG", quality=90),
                   _encoded(_smooth(200, 150).convert(mode), "TIFF")):  # fmt: skip
        with Image.open(io.BytesIO(record.tobytes())) as image:
            expected = np.asarray(image.convert("RGB"))
        pixels = images.decode_record(record)
        assert pixels.dtype == np.uint8 and pixels.shape == (150, 200, 3)
        np.testing.assert_array_equal(pixels, expected)
        assert images.record_size(record) == (200, 150)


def test_a_jpeg_is_decoded_at_the_smallest_dct_scale_keeping_the_size_asked() -> None:
    record = _encoded(_smooth(800, 600), "JPEG", quality=90)
    assert images.decode_record(record, at_least=(400, 300)).shape == (300, 400, 3)  # 1/2
    assert images.decode_record(record, at_least=(401, 300)).shape == (375, 500, 3)  # 5/8
    assert images.decode_record(record, at_least=(100, 80)).shape == (150, 200, 3)  # 2/8
    assert images.decode_record(record, at_least=(800, 1)).shape == (600, 800, 3)
    # Pillow, for a JPEG libjpeg-turbo cannot make RGB, scales by halves only
    cmyk = _encoded(_smooth(800, 600).convert("CMYK"), "JPEG", quality=90)
    assert images.decode_record(cmyk, at_least=(300, 200)).shape == (300, 400, 3)


@pytest.mark.parametrize(
    ("mode", "options"),
    [
        ("RGB", {"subsampling": 0}),  # 4:4:4
        ("RGB", {"subsampling": 1}),  # 4:2:2: fancy upsampling across columns
        ("RGB", {"subsampling": 2}),  # 4:2:0: and across rows
        ("RGB", {"subsampling": 2, "progressive": True}),
        ("L", {}),
        ("CMYK", {}),  # Pillow's, in full
    ],
)
def test_a_jpegs_box_decodes_to_the_pixels_of_the_whole_image(
    mode: str, options: dict, monkeypatch
) -> None:
    """Decoding only a box (libjpeg's partial decompression) gives, to the bit, the box's
    pixels in the image decoded whole, at every DCT scale, for boxes anywhere, edges
    included. Decoding none of the pixels beside the box changed its edge pixels by up to 60
    levels where chroma is subsampled (fancy upsampling draws on the neighbours)."""
    rng = np.random.default_rng(7)
    image = Image.fromarray(_noise((157, 203, 3))).resize((203, 157), Image.NEAREST)
    monkeypatch.setattr(ImageFile, "MAXBLOCK", 1 << 20)  # Pillow: progressive, in memory
    record = _encoded(image.convert(mode), "JPEG", quality=90, **options)
    for size in [(26, 20), (51, 40), (77, 59), (102, 79), (127, 99), (153, 118), (178, 138),
                 (203, 157)]:  # fmt: skip
        whole = images.decode_record(record, at_least=size)
        height, width = whole.shape[:2]
        assert (width, height) >= size
        for _ in range(12):
            right, bottom = rng.integers(1, 204), rng.integers(1, 158)
            left, top = int(rng.integers(0, right)), int(rng.integers(0, bottom))
            box = (left, top, int(right), int(bottom))
            x, y, w, h = images.scaled_box(box, (203, 157), (width, height))
            part = images.decode_record(record, at_least=size, box=box)
            np.testing.assert_array_equal(part, whole[y : y + h, x : x + w], err_msg=str(box))


def test_a_box_maps_to_the_scaled_image_inside_it() -> None:
    assert images.scaled_box((100, 50, 300, 150), (400, 200), (200, 100)) == (50, 25, 100, 50)
    assert images.scaled_box((0, 0, 400, 200), (400, 200), (50, 25)) == (0, 0, 50, 25)
    # at least a pixel, and never beyond the scaled image's edge
    assert images.scaled_box((399, 199, 400, 200), (400, 200), (50, 25)) == (49, 24, 1, 1)


def test_damaged_jpegs_and_boxes_outside_raise_clear_errors() -> None:
    from vgg16 import _jpeg

    record = _encoded(_smooth(64, 48), "JPEG", quality=90).tobytes()
    with pytest.raises(ValueError, match="cannot read JPEG header"):
        _jpeg.header(record[:40])
    with pytest.raises(ValueError, match="cannot decode JPEG"):
        _jpeg.decode_crop(record[:2] + b"\xff\xc0" + record[4:], 8, 0, 0, 64, 48)
    with pytest.raises(ValueError, match=r"crop \(0, 0, 65, 48\) lies outside the image at 8/8"):
        _jpeg.decode_crop(record, 8, 0, 0, 65, 48)
    with pytest.raises(ValueError, match=r"crop \(0, 0, 33, 24\) lies outside the image at 4/8"):
        _jpeg.decode_crop(record, 4, 0, 0, 33, 24)
    with pytest.raises(ValueError, match="scale must be 1..8"):
        _jpeg.decode_crop(record, 9, 0, 0, 8, 8)
    assert _jpeg.header(record) == (64, 48, True)
    assert len(_jpeg.decode_crop(record, 4, 0, 0, 32, 24)) == 32 * 24 * 3
