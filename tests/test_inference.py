"""One engine: the model file's ONNX graph in ONNX Runtime gives PyTorch's probabilities and features, for both networks,
with and without test-time averaging; predict starts without PyTorch; a model file from before the graph still works."""

import io
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

from nightskynet.core.architecture import ResNetArchitecture, StudyArchitecture
from nightskynet.net.inference import Calibration, OnnxEngine, answer, d4_views, open_engine
from nightskynet.net.model import GalaxyClassifier, load_model, save_model
from nightskynet.net.model_file import GRAPH_MEMBER, INFO_MEMBER, ModelFileError, read_model_file
from nightskynet.net.torch_inference import TorchEngine

CUTOUT = {"size": 120, "scale_mode": "fixed", "scale": 0.4, "adaptive_k": 0.0846}


def classifier(network: str, seed: int = 0) -> GalaxyClassifier:
    """A network with non-trivial standardisation and calibration (the arithmetic under test does not need training)."""
    torch.manual_seed(seed)
    arch = (
        ResNetArchitecture(16, 0.3)
        if network == "resnet"
        else StudyArchitecture((32, 64, 64, 128), (6, 5, 3, 3), (512, 256, 256, 128), 2, 0.5)
    )
    model = GalaxyClassifier(network, arch, 60)
    model.standardize.set_statistics([0.1, 0.08, 0.06], [0.12, 0.1, 0.09])
    model.calibration.logit_bias.copy_(torch.tensor([0.3, -0.2, 0.1, -1.5]))
    model.calibration.temperature.fill_(1.3)
    if network == "resnet":  # batch-norm statistics away from the identity
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def extra(model: GalaxyClassifier) -> dict:
    bias = [float(v) for v in model.calibration.logit_bias]
    return {
        "cutout": CUTOUT,
        "calibration": {"logit_bias": bias, "temperature": float(model.calibration.temperature)},
        "merger_threshold": 0.2,
    }


@pytest.fixture(scope="module")
def test_crops(tiny_run):
    """The tiny run's test split: real demo crops."""
    with np.load(tiny_run / "results/demo/shards/test.npz") as z:
        return z["images"]


@pytest.mark.parametrize("network", ["resnet", "study"])
@pytest.mark.parametrize("views", [8, 4, 1])
def test_onnx_runtime_gives_pytorch_s_probabilities_and_features(tmp_path, test_crops, network, views):
    model = classifier(network)
    save_model(tmp_path / "model.pt", model, extra(model))
    onnx, info = open_engine(tmp_path / "model.pt", "cpu", threads=2)
    assert isinstance(onnx, OnnxEngine)
    torch_engine = TorchEngine(model, torch.device("cpu"))
    calibration = Calibration.of(info)
    a, b = answer(onnx, test_crops, calibration, views), answer(torch_engine, test_crops, calibration, views)
    np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-4)
    assert np.abs(a.probabilities - b.probabilities).max() < 1e-5
    np.testing.assert_allclose(a.features, b.features, atol=1e-4)
    assert a.features.shape == (len(test_crops), 128)
    # the calibration is the one in the model: softmax((logits + bias) / T), what PyTorch's forward gives
    with torch.no_grad():
        x = torch.from_numpy(test_crops[:5]).permute(0, 3, 1, 2).float() / 255
        direct = torch.softmax(model(x), dim=1).numpy()
    np.testing.assert_allclose(answer(onnx, test_crops[:5], calibration, views=1).probabilities, direct, atol=1e-5)


def test_the_trained_tiny_model_agrees_on_its_test_split(tiny_run, test_crops):
    path = tiny_run / "results/demo/model/model.pt"
    onnx, info = open_engine(path, "cpu", threads=2)
    model, _ = load_model(path)
    a = answer(onnx, test_crops, Calibration.of(info))
    b = answer(TorchEngine(model, torch.device("cpu")), test_crops, Calibration.of(info))
    assert np.abs(a.probabilities - b.probabilities).max() < 1e-4


def test_views_are_the_d4_group_as_pytorch_applies_it():
    from nightskynet.images.augment import d4, d4_torch

    images = np.random.default_rng(0).integers(0, 256, (3, 6, 6, 3), dtype=np.uint8)
    views = d4_views(images, 8).reshape(8, 3, 6, 6, 3)
    for g in range(8):
        assert all(np.array_equal(views[g, i], d4(images[i], g)) for i in range(3))
        nchw = d4_torch(torch.from_numpy(images).permute(0, 3, 1, 2), g).permute(0, 2, 3, 1).numpy()
        assert np.array_equal(views[g], nchw)


def test_the_model_file_holds_its_settings_and_graph_and_the_same_model_the_same_bytes(tmp_path):
    model = classifier("resnet")
    save_model(tmp_path / "a.pt", model, extra(model))
    save_model(tmp_path / "b.pt", model, extra(model))
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    info, graph = read_model_file(tmp_path / "a.pt")
    assert info["network"] == "resnet" and info["cutout"] == CUTOUT and "state_dict" not in info
    import onnx

    proto = onnx.load_from_string(graph)
    assert [i.name for i in proto.graph.input] == ["images"] and [o.name for o in proto.graph.output] == ["logits", "features"]
    loaded, saved = load_model(tmp_path / "a.pt")  # PyTorch still reads the archive with the two members in it
    assert saved["merger_threshold"] == 0.2


def test_a_model_file_from_before_the_graph_still_works(tmp_path, test_crops, caplog):
    model = classifier("study")
    save_model(tmp_path / "new.pt", model, extra(model))
    old = io.BytesIO()
    with zipfile.ZipFile(tmp_path / "new.pt") as src, zipfile.ZipFile(old, "w") as dst:
        for item in src.infolist():
            if not item.filename.endswith((INFO_MEMBER, GRAPH_MEMBER)):
                dst.writestr(item, src.read(item))
    (tmp_path / "old.pt").write_bytes(old.getvalue())
    assert read_model_file(tmp_path / "old.pt") == (None, None)
    with caplog.at_level("WARNING"):
        engine, info = open_engine(tmp_path / "old.pt", "cpu")
    assert "written before models stored their ONNX graph" in caplog.text
    reference, _ = open_engine(tmp_path / "new.pt", "cpu")
    np.testing.assert_allclose(
        answer(engine, test_crops[:8], Calibration.of(info)).probabilities,
        answer(reference, test_crops[:8], Calibration.of(info)).probabilities,
        atol=1e-6,
    )


def test_files_that_are_not_models_and_a_missing_gpu_are_named(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a zip at all" * 100)
    with zipfile.ZipFile(tmp_path / "plain.zip", "w") as z:
        z.writestr("notes.txt", "hello")
    for path, words in (
        (tmp_path / "junk.pt", "not even a zip file"),
        (tmp_path / "plain.zip", "not a PyTorch archive"),
        (tmp_path, "folder"),
    ):
        with pytest.raises(ModelFileError, match=words):
            read_model_file(path)
    model = classifier("resnet")
    save_model(tmp_path / "m.pt", model, extra(model))
    if not torch.cuda.is_available():
        with pytest.raises(Exception, match="no CUDA device"):
            open_engine(tmp_path / "m.pt", "cuda")


def test_predict_runs_without_importing_pytorch(tiny_run, tmp_path):
    from conftest import SKY_DIR

    folder = tmp_path / "few"
    folder.mkdir()
    for path in sorted((SKY_DIR / "images").iterdir())[:5]:
        (folder / path.name).symlink_to(path)
    code = (
        "import sys; from nightskynet.stages import predict; "
        f"predict.run(model_path={str(tiny_run / 'results/demo/model/model.pt')!r}, input_path={str(folder)!r}, "
        f"out_csv={str(tmp_path / 'out.csv')!r}, settings={{}}, client={{}}, cache_dir={str(tmp_path)!r}, device='auto', threads=2, "
        "views=4, batch_size=64); "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')))"
    )
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []
