"""What operators a model file uses, and whether a device without TensorFlow can run them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from edgekit.deps import installed
from edgekit.errors import ModelFileError
from edgekit.runtime.tflite_check import verify_tflite


@dataclass(frozen=True)
class OpReport:
    ops: dict[str, int]  # op name -> how many times the graph uses it
    flex: tuple[str, ...] = ()  # Select-TF ops: need TensorFlow's Flex delegate on the device
    custom: tuple[str, ...] = ()  # custom ops: need a registered kernel
    note: str = ""

    @property
    def portable(self) -> bool:
        return not self.flex and not self.custom

    def warnings(self) -> list[str]:
        out = []
        if self.flex:
            out.append(
                f"uses Select-TF (Flex) ops {', '.join(self.flex)}: it will not run on a device without TensorFlow"
            )
        if self.custom:
            out.append(f"uses custom ops {', '.join(self.custom)}: the device needs their kernels registered")
        return out

    def to_dict(self) -> dict:
        return {
            "ops": self.ops,
            "flex": list(self.flex),
            "custom": list(self.custom),
            "portable": self.portable,
        }

    def summary(self) -> str:
        return ", ".join(f"{name}×{n}" for name, n in sorted(self.ops.items(), key=lambda kv: -kv[1]))


def tflite_ops(path: Path) -> OpReport:
    if not installed("ai_edge_litert"):
        return OpReport({}, note="install ai-edge-litert to list TFLite operators")
    from ai_edge_litert import schema_py_generated as schema

    buf = Path(path).read_bytes()
    # the schema API follows offsets unchecked: a damaged file is refused before it reads one
    verify_tflite(buf, source=str(path))
    try:
        model = schema.Model.GetRootAs(buf, 0)
        names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        codes = []
        for i in range(model.OperatorCodesLength()):
            oc = model.OperatorCodes(i)
            code = max(
                oc.BuiltinCode(), oc.DeprecatedBuiltinCode()
            )  # old files keep it in the deprecated slot
            custom = oc.CustomCode()
            codes.append(custom.decode() if custom else names.get(code, str(code)))
        used: Counter[str] = Counter()
        for s in range(model.SubgraphsLength()):
            graph = model.Subgraphs(s)
            for o in range(graph.OperatorsLength()):
                used[codes[graph.Operators(o).OpcodeIndex()]] += 1
    except Exception as e:  # a damaged flatbuffer
        raise ModelFileError(f"{path} is a damaged TFLite model: {e}") from None
    flex = tuple(sorted(n for n in used if n.startswith("Flex")))
    custom = tuple(sorted(n for n in used if n not in names.values() and not n.startswith("Flex")))
    return OpReport(dict(used), flex, custom)


def onnx_ops(path: Path) -> OpReport:
    if not installed("onnx"):
        return OpReport({}, note="install onnx to list ONNX operators")
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    used = Counter(n.op_type for n in model.graph.node)
    custom = tuple(
        sorted({n.op_type for n in model.graph.node if n.domain not in ("", "ai.onnx", "com.microsoft")})
    )
    return OpReport(dict(used), (), custom)


OP_READERS = {".tflite": tflite_ops, ".onnx": onnx_ops}


def op_report(path: Path) -> OpReport | None:
    reader = OP_READERS.get(Path(path).suffix.lower())
    return reader(path) if reader else None
