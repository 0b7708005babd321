"""What operators a model file uses, and whether a device without TensorFlow can run them. Each
file kind lists its own (`ModelFile.ops`, `edgekit.runtime.files`)."""

from __future__ import annotations

from dataclasses import dataclass


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
