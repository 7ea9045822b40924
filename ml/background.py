"""Background removal with rembg, and the checks that tell a good cut-out from a bad one.

One rembg session per model and size per process, created explicitly by name: rembg's default
session would download a model, and nothing here downloads at run time. rembg finds a model's ONNX
file under ``$U2NET_HOME/models/<name>/<name>.onnx`` (``make`` links the shared ISNet file there).

ISNet runs at any working size through a rewritten copy of its graph (``resolution_free_model``):
the exported graph resizes to constant sizes computed for a 1024² input; the copy resizes by the
equivalent scale factors and leaves the input's height and width free. ``precision="int8"`` runs a
statically quantised copy of that graph (``quantized_model``).
"""
from __future__ import annotations

import hashlib
import tempfile
import threading
from pathlib import Path

import numpy as np
from PIL import Image

# A mask covering less than this share of the image found no subject; more than this, no background.
MIN_SHARE = 0.02
MAX_SHARE = 0.98
IQR_FACTOR = 1.5

# ISNet's native input size; other sizes go through the resolution-free copy of the graph.
NATIVE_SIZE = 1024
# Only these rembg sessions are DIS/ISNet graphs whose Resize nodes the rewrite understands.
RESIZABLE = {"isnet-general-use"}
# Bump when the rewrite changes, so an older rewritten file is not reused.
REWRITE_VERSION = 1
# Bump when the quantisation changes (its settings or the calibration photos), likewise.
# 2: 7-bit weights (``reduce_range``), so CPUs without VNNI compute the same masks as those with it.
QUANTIZE_VERSION = 2
PRECISIONS = ("fp32", "int8")
# The side the calibration photos (``modelfiles.CALIBRATION_DIR``) are fed at.
CALIBRATION_SIZE = 640

_SESSIONS: dict[tuple[str, int, int, str], object] = {}
_LOCK = threading.Lock()


class BackgroundModelMissing(RuntimeError):
    """The background model's file is not on this machine (it is never downloaded here)."""


def _session_class(name: str):
    from rembg.sessions import sessions_class

    for cls in sessions_class:
        if cls.name() == name:
            return cls
    known = ", ".join(sorted(cls.name() for cls in sessions_class))
    raise BackgroundModelMissing(f"unknown background model {name!r}; rembg knows: {known}")


def model_file(name: str) -> str:
    """Where rembg will load ``name`` from; raises BackgroundModelMissing when the file is absent."""
    cls = _session_class(name)
    found = cls.resolve_existing(f"{name}.onnx")
    if found is None:
        expected = f"{cls.model_dir()}/{name}.onnx"
        raise BackgroundModelMissing(
            f"background model {name!r} not found at {expected}. Put the ONNX file there (for "
            f"isnet-general-use, `make` links ../shared/models/isnet-general-use.onnx), or set U2NET_HOME."
        )
    return found


def get_session(name: str, size: int = NATIVE_SIZE, threads: int = 0, precision: str = "fp32", *,
                build: bool = True):
    """The process-wide rembg session for ``name`` at ``size``² and ``precision``, created once, on the CPU.

    ``threads``: ONNX Runtime's intra-op threads (0: one per core). A batch of cut-outs runs one
    inference per core at one thread each, which beats one inference on all cores (ISNet has many
    small ops that do not spread over cores: bench/background_size.py). Other rembg models take
    rembg's defaults, at their native size in fp32. ``build=False`` refuses (BackgroundModelMissing)
    where the rewritten or quantised file would first have to be written.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if (size != NATIVE_SIZE or precision != "fp32") and name not in RESIZABLE:
        raise BackgroundModelMissing(f"background model {name!r} runs only at its native size in fp32")
    with _LOCK:
        key = (name, size, threads if name in RESIZABLE else 0, precision)
        if key not in _SESSIONS:
            from rembg import new_session

            source = Path(model_file(name))  # refuse before rembg could reach for the network
            if name not in RESIZABLE:
                _SESSIONS[key] = new_session(name, providers=["CPUExecutionProvider"])
            else:
                if precision == "int8":
                    path = quantized_model(source, build=build)
                else:
                    path = source if size == NATIVE_SIZE else resolution_free_model(source, build=build)
                _SESSIONS[key] = _sized_session(_session_class(name), path, size, threads)
        return _SESSIONS[key]


def _sized_session(cls, path: Path, size: int, threads: int):
    """rembg's own session class for the model, reading ``path`` and feeding it ``size``² images,
    with ``threads`` intra-op threads (0: ONNX Runtime's default) and full graph optimisation."""
    import onnxruntime as ort

    class SizedSession(cls):
        @classmethod
        def download_models(cls, *args, model_path: str = "", **kwargs) -> str:
            return model_path

        def normalize(self, img, mean, std, _size, *args, **kwargs):
            return super().normalize(img, mean, std, (size, size), *args, **kwargs)

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return SizedSession(cls.name(), options, providers=["CPUExecutionProvider"], model_path=str(path))


def remove_background(rgb: Image.Image, model: str, size: int = NATIVE_SIZE, threads: int = 0,
                      precision: str = "fp32") -> np.ndarray:
    """The subject's soft mask for ``rgb``: float32, shape (height, width), values in [0, 1].

    ``size`` is the side of the square the model sees (ISNet's own is 1024); ``threads`` and
    ``precision`` as for ``get_session``.
    """
    mask = get_session(model, size, threads, precision).predict(rgb.convert("RGB"))[0]
    return np.asarray(mask, dtype=np.float32) / 255.0


def resolution_free_model(source: Path, *, build: bool = True) -> Path:
    """A copy of the ISNet graph at ``source`` that runs at any input size; written once into the
    model cache, keyed by the source's hash."""
    from .embedders import cache_dir

    target = cache_dir() / f"{source.stem}-any-size-v{REWRITE_VERSION}-{_file_sha256(source)[:16]}.onnx"
    return _written_once(target, lambda partial: _rewrite(source, partial), build)


def cutter_id(model: str, size: int, precision: str) -> str:
    """The identity of the masks ``remove_background(model, size, precision)`` makes, stored with each
    cut-out: when it changes (another model, size or precision, or a new version of the rewritten or
    quantised graph ``get_session`` would load), stored cut-outs were made by another cutter and are
    cut again (the pipeline's sweep does it)."""
    rewritten = precision == "int8" or size != NATIVE_SIZE  # the graphs ``get_session`` derives
    return (f"{model}@{size}/{precision}" + (f"-r{REWRITE_VERSION}" if rewritten else "")
            + (f"-q{QUANTIZE_VERSION}" if precision == "int8" else ""))


def quantized_model(source: Path, *, build: bool = True) -> Path:
    """An int8 copy of ``resolution_free_model(source)``, written once into the model cache, keyed by
    the source's hash: static QDQ quantisation (per-channel 7-bit weights, uint8 activations whose
    ranges are the min/max seen on the photos in ``modelfiles.CALIBRATION_DIR``). On CPUs with int8 dot-product
    instructions it is about 3x faster than fp32 at the same size, and its masks match fp32's at
    1024² (bench/background_size.py prints both). With 8-bit weights, an AVX2 CPU without VNNI
    saturated its u8 x s8 sums (``quantize_int8``'s ``reduce_range``): over 30 validation photos at
    1024² the mean IoU with fp32 was 0.956 and one mask fell to 0.13; with 7-bit weights 0.998 and
    0.983 at the same speed. Building it takes a minute or two of CPU.
    """
    from .embedders import cache_dir

    target = cache_dir() / f"{source.stem}-int8-v{QUANTIZE_VERSION}-{_file_sha256(source)[:16]}.onnx"
    return _written_once(target, lambda partial: _quantize(resolution_free_model(source), partial), build)


def _written_once(target: Path, write, build: bool = True) -> Path:
    """``modelfiles.written_once``; with ``build=False`` an absent file is refused instead
    (BackgroundModelMissing)."""
    from .modelfiles import written_once

    if not build and not target.exists():
        raise BackgroundModelMissing(f"{target.name} is not written yet (the first cut-out writes it)")
    return written_once(target, write)


def _quantize(any_size: Path, target: Path) -> None:
    """Quantise the resolution-free graph: first as an all-float32 graph (the exported ISNet keeps its
    weights in float16 behind Cast nodes, which the quantiser cannot place Q/DQ pairs around)."""
    import onnx

    from .modelfiles import calibration_photos, quantize_int8

    model = onnx.load(str(any_size))
    _as_float32(model.graph)
    input_name = model.graph.input[0].name
    try:
        photos = calibration_photos()
    except FileNotFoundError as exc:
        raise BackgroundModelMissing(str(exc)) from exc
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".float32-") as work:
        float32 = Path(work) / "float32.onnx"
        onnx.save(model, str(float32))
        feeds = ({input_name: _isnet_input(Image.open(path), CALIBRATION_SIZE)} for path in photos)
        quantize_int8(float32, target, feeds, per_pass=3 if len(photos) % 3 else 4, reduce_range=True)


def _as_float32(graph) -> None:
    """Make a float16/float32 graph all float32: float16 initializers become float32 and every Cast
    (they only move between the two) is bypassed."""
    from onnx import TensorProto, helper, numpy_helper

    for node in graph.node:
        if node.op_type == "Cast":
            to = next(attribute.i for attribute in node.attribute if attribute.name == "to")
            if to not in (TensorProto.FLOAT, TensorProto.FLOAT16):
                raise BackgroundModelMissing(f"unexpected Cast to type {to} in the background model")
    for index, init in enumerate(list(graph.initializer)):
        if init.data_type == TensorProto.FLOAT16:
            graph.initializer[index].CopyFrom(
                numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float32), init.name))
    bypass = {node.output[0]: node.input[0] for node in graph.node if node.op_type == "Cast"}

    def source_of(name: str) -> str:
        while name in bypass:
            name = bypass[name]
        return name

    nodes = [node for node in graph.node if node.op_type != "Cast"]
    for node in nodes:
        node.input[:] = [source_of(name) for name in node.input]
    nodes += [helper.make_node("Identity", [source_of(output.name)], [output.name])
              for output in graph.output if output.name in bypass]
    del graph.node[:]
    graph.node.extend(nodes)
    for value in (*graph.input, *graph.output):
        value.type.tensor_type.elem_type = TensorProto.FLOAT
    del graph.value_info[:]


def _isnet_input(image: Image.Image, size: int) -> np.ndarray:
    """ISNet's input for ``image`` at ``size``², as rembg's DIS session prepares it (mean 0.5, std 1)."""
    rgb = np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.LANCZOS), dtype=np.float64)
    rgb = rgb / max(float(rgb.max()), 1e-6) - 0.5
    return rgb.transpose(2, 0, 1)[None].astype(np.float32)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _rewrite(source: Path, target: Path) -> None:
    """Replace each Resize's constant output size by the scale it amounts to at 1024², then free
    the input's height and width.

    The sizes are a Concat of the Resize input's batch/channel dims (from Shape) and a constant
    height/width; the input's spatial size at 1024² is read by running the graph once.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    resizes = [node for node in graph.node if node.op_type == "Resize" and len(node.input) == 4 and node.input[3]]
    if not resizes:
        raise BackgroundModelMissing(f"{source.name} has no sized Resize nodes to rewrite")
    spatial = _spatial_sizes_at_native(model, [node.input[0] for node in resizes])
    constants = {output: node for node in graph.node if node.op_type == "Constant" for output in node.output}
    producers = {output: node for node in graph.node for output in node.output}
    for index, node in enumerate(resizes):
        concat = producers[node.input[3]]
        height_width = numpy_helper.to_array(constants[concat.input[1]].attribute[0].t)
        scales = np.concatenate([[1.0, 1.0], height_width / np.asarray(spatial[node.input[0]], dtype=np.float64)])
        name = f"stylesite_resize_scales_{index}"
        graph.initializer.append(numpy_helper.from_array(scales.astype(np.float32), name))
        node.input[:] = [node.input[0], "", name]
    for value in (*graph.input, *graph.output):
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 4:
            dims[2].dim_param, dims[3].dim_param = "height", "width"
    del graph.value_info[:]
    _drop_dead_nodes(graph)
    onnx.checker.check_model(model)
    onnx.save(model, str(target))


def _spatial_sizes_at_native(model, names: list[str]) -> dict[str, tuple[int, int]]:
    """Each named tensor's (height, width) when the graph runs on a 1024² input."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in names)
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.zeros((1, 3, NATIVE_SIZE, NATIVE_SIZE), dtype=np.float32)}
    values = session.run(names, feed)
    return {name: tuple(value.shape[2:]) for name, value in zip(names, values)}


def _drop_dead_nodes(graph) -> None:
    """Keep only the nodes the graph's outputs depend on (the Shape/Slice/Concat size chains go),
    in topological order (the exported graph lists a few nodes after their consumers)."""
    producers = {output: index for index, node in enumerate(graph.node) for output in node.output}
    order: list[int] = []
    state: dict[int, bool] = {}  # False: being visited, True: placed
    stack = [(producers[output.name], False) for output in graph.output if output.name in producers]
    while stack:
        index, expanded = stack.pop()
        if expanded:
            if not state.get(index):
                state[index] = True
                order.append(index)
            continue
        if index in state:
            continue
        state[index] = False
        stack.append((index, True))
        stack.extend((producers[name], False) for name in graph.node[index].input if name in producers
                     and producers[name] not in state)
    nodes = [graph.node[index] for index in order]
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    initializers = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def foreground_share(mask: np.ndarray) -> float:
    """Share of the image the subject covers."""
    return float((mask > 0.5).mean())


def flag_suspect_masks(shares: list[float]) -> list[bool]:
    """Which masks look wrong: nearly empty, nearly full, or outliers of the collection by the IQR rule.

    The IQR rule needs a distribution; with fewer than 8 shares only the absolute bounds apply.
    """
    values = np.asarray(shares, dtype=np.float64)
    suspect = (values < MIN_SHARE) | (values > MAX_SHARE)
    if len(values) >= 8:
        q1, q3 = np.percentile(values, [25, 75])
        spread = IQR_FACTOR * (q3 - q1)
        suspect |= (values < q1 - spread) | (values > q3 + spread)
    return suspect.tolist()
