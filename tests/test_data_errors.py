"""Bad input to the data layer: clear errors, nothing modified, nothing used that is wrong."""

from __future__ import annotations

import hashlib
import http.server
import threading
import warnings
from functools import partial

import pytest

import cnnlab
from cnnlab.data import (
    ChecksumError,
    CorruptFileError,
    DataNotFoundError,
    SkippedFilesWarning,
    image_dataset,
    scan_image_folder,
)
from cnnlab.data.manifest import FileEntry
from cnnlab.data.store import download, locate

INDEX = "imagenet/imagenet_class_index.json"


def test_missing_file_names_dataset_every_path_and_the_fetch_command(empty_env):
    mirror, cache = empty_env
    with pytest.raises(DataNotFoundError) as info:
        cnnlab.load_mnist()
    message = str(info.value)
    assert "dataset 'mnist'" in message
    assert str(mirror / "mnist" / "train-images-idx3-ubyte.gz") in message
    assert str(cache / "mnist" / "train-images-idx3-ubyte.gz") in message
    assert "cnnlab fetch mnist" in message and "CNNLAB_OFFLINE=1" in message


def test_mirror_only_file_says_it_has_no_url(empty_env, monkeypatch):
    monkeypatch.delenv("CNNLAB_OFFLINE")
    with pytest.raises(DataNotFoundError, match="no public download URL"):
        locate("cifar10-subset", "cifar10/labels.csv")


def test_checksum_mismatch_in_mirror_is_refused_and_the_file_left_alone(mirror_with):
    mirror = mirror_with(INDEX)
    target = mirror / INDEX
    tampered = target.read_bytes().replace(b"Egyptian_cat", b"Egyptian_dog")
    target.write_bytes(tampered)
    before = (target.read_bytes(), target.stat().st_mtime_ns)
    actual = hashlib.sha256(tampered).hexdigest()
    expected = cnnlab.data.get_asset("imagenet-class-index").file(INDEX).sha256
    with pytest.raises(ChecksumError) as info:
        locate("imagenet-class-index", INDEX)
    message = str(info.value)
    assert str(target) in message and expected in message and actual in message
    assert (target.read_bytes(), target.stat().st_mtime_ns) == before


def test_gzip_payload_checksum_accepts_a_recompressed_container(mirror_with, tmp_path):
    import gzip

    mirror = mirror_with("mnist/t10k-labels-idx1-ubyte.gz")
    path = mirror / "mnist/t10k-labels-idx1-ubyte.gz"
    payload = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(payload, compresslevel=1, mtime=12345))  # another valid container
    assert locate("mnist", "mnist/t10k-labels-idx1-ubyte.gz") == path


def test_truncated_gzip_names_the_file(mirror_with):
    mirror = mirror_with("mnist/t10k-labels-idx1-ubyte.gz")
    path = mirror / "mnist/t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(CorruptFileError, match="t10k-labels-idx1-ubyte.gz.*truncated or corrupt"):
        locate("mnist", "mnist/t10k-labels-idx1-ubyte.gz")


def _copy_photos(real_data, folder, names):
    folder.mkdir(parents=True)
    for name in names:
        (folder / name.split("/")[1]).write_bytes((real_data / "oxford_pets_cats_vs_dogs" / name).read_bytes())


def test_image_folder_skips_bad_files_with_one_warning(real_data, tmp_path):
    root = tmp_path / "pets"
    _copy_photos(real_data, root / "cats", ["cats/Bengal_16.jpg", "cats/Siamese_17.jpg"])
    _copy_photos(real_data, root / "dogs", ["dogs/shiba_inu_136.jpg", "dogs/german_shorthaired_153.jpg"])
    (root / "cats" / "notes.txt").write_text("not an image")
    whole = (real_data / "oxford_pets_cats_vs_dogs/cats/Egyptian_Mau_140.jpg").read_bytes()
    (root / "dogs" / "truncated.jpg").write_bytes(whole[: len(whole) // 3])
    (root / "dogs" / "fake.png").write_bytes(b"this is text with a png suffix")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        folder = scan_image_folder(root)
    skipped_warnings = [w for w in caught if issubclass(w.category, SkippedFilesWarning)]
    assert len(skipped_warnings) == 1
    text = str(skipped_warnings[0].message)
    for name in ("notes.txt", "truncated.jpg", "fake.png"):
        assert name in text
    assert folder.counts() == {"cats": 2, "dogs": 2}
    # A whole epoch runs through without meeting a bad file.
    batches = list(image_dataset(folder, image_size=(64, 64), batch_size=3))
    assert sum(len(x) for x, _ in batches) == 4
    assert batches[0][0].shape[1:] == (64, 64, 3)


def test_image_folder_bad_layouts_name_the_problem(real_data, tmp_path):
    with pytest.raises(FileNotFoundError, match="`directory`"):
        scan_image_folder(tmp_path / "nowhere")
    (tmp_path / "flat").mkdir()
    with pytest.raises(ValueError, match="no class sub-folders"):
        scan_image_folder(tmp_path / "flat")
    _copy_photos(real_data, tmp_path / "pets" / "cats", ["cats/Bengal_16.jpg"])
    (tmp_path / "pets" / "dogs").mkdir()
    with pytest.raises(ValueError, match="dogs.*holds no usable image"):
        scan_image_folder(tmp_path / "pets")


def test_split_is_disjoint_and_complete(real_data):
    folder = cnnlab.load_pets("subset")
    train, _ = folder.split(0.2, "training", seed=3)
    val, val_labels = folder.split(0.2, "validation", seed=3)
    assert set(train).isdisjoint(val) and len(train) + len(val) == 370
    assert sorted(map(str, train + val)) == sorted(map(str, folder.files))
    assert (val_labels == 0).sum() == 24  # stratified: 20% of 120 cats
    with pytest.raises(ValueError, match="`validation_split`"):
        folder.split(1.5, "training")


@pytest.fixture
def local_server(real_data):
    """Serve the real data folder on loopback, for download tests."""
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(real_data))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_verifies_then_renames_into_place(local_server, real_data, tmp_path, capsys):
    good = cnnlab.data.get_asset("imagenet-class-index").file(INDEX)
    entry = FileEntry(INDEX, good.sha256, "file", (f"{local_server}/missing.json", f"{local_server}/{INDEX}"))
    destination = tmp_path / "cache" / INDEX
    assert download(entry, destination) == destination
    assert destination.read_bytes() == (real_data / INDEX).read_bytes()
    assert "imagenet_class_index.json" in capsys.readouterr().err  # the progress bar
    assert [p.name for p in destination.parent.iterdir()] == ["imagenet_class_index.json"]


def test_download_with_wrong_checksum_leaves_nothing(local_server, tmp_path):
    entry = FileEntry(INDEX, "0" * 64, "file", (f"{local_server}/{INDEX}",))
    destination = tmp_path / "cache" / INDEX
    with pytest.raises(ChecksumError) as info:
        download(entry, destination, progress=False)
    assert "0" * 64 in str(info.value) and "got " in str(info.value)
    assert list(destination.parent.iterdir()) == []  # no file, no leftover .part


def test_locate_downloads_into_the_cache_when_online(empty_env, local_server, monkeypatch):
    from cnnlab.data import manifest

    _, cache = empty_env
    monkeypatch.delenv("CNNLAB_OFFLINE")
    original = manifest.get_asset("imagenet-class-index")
    served = original.__class__(
        **{
            **original.__dict__,
            "files": (FileEntry(INDEX, original.files[0].sha256, "file", (f"{local_server}/{INDEX}",)),),
        }
    )
    monkeypatch.setattr("cnnlab.data.store.get_asset", lambda name: served)
    assert locate("imagenet-class-index", INDEX) == cache / INDEX
    assert (cache / INDEX).is_file()
